/* placeholder */
#include <stdio.h>
int main(void) { fputs("kmx-query: not built yet\n", stderr); return 1; }

/* placeholder */
#include <stdio.h>
int main(void) { fputs("kmx-storage: not built yet\n", stderr); return 1; }

/* placeholder */
#include <stdio.h>
int main(void) { fputs("kmx-broker: not built yet\n", stderr); return 1; }

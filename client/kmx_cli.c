#include <stdio.h>
int main(void) { fputs("kmx: not built yet\n", stderr); return 1; }

/* placeholder */
#include <stdio.h>
int main(void) { fputs("kmx-ingest: not built yet\n", stderr); return 1; }

/* util.c */
#include <stdio.h>

int util_entry(void) {
    puts("util");
    return 0;
}

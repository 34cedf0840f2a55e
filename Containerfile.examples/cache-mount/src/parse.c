/* parse.c */
#include <stdio.h>

int parse_entry(void) {
    puts("parse");
    return 0;
}

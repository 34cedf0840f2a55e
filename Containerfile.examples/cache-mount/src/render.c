/* render.c */
#include <stdio.h>

int render_entry(void) {
    puts("render");
    return 0;
}

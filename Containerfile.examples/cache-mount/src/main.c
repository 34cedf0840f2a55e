/* main.c */
#include <stdio.h>

int main_entry(void) {
    puts("main");
    return 0;
}

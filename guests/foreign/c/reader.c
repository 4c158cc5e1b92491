/* A C program built with Debian's clang and wasi-libc as a WASI preview 1 core
 * module: it prints the first line of a file (its first argument, or
 * /data/input.txt) and reads the monotonic clock. */
#include <stdio.h>
#include <time.h>

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/data/input.txt";
    FILE *file = fopen(path, "r");
    if (!file) {
        perror(path);
        return 1;
    }
    char line[256];
    if (fgets(line, sizeof line, file)) {
        printf("first line of %s: %s", path, line);
    }
    fclose(file);
    struct timespec now;
    if (clock_gettime(CLOCK_MONOTONIC, &now) == 0) {
        printf("read the monotonic clock\n");
    }
    return 0;
}

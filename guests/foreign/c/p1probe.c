/* Probes of WASI preview 1 behaviour, for docs/preview1.md and the tests that
 * pin it (crates/nanoproc-cli/tests/preview1.rs): one probe per first argument,
 * each printing what raw wasi_snapshot_preview1 calls returned. Errno numbers
 * are WASI's: 0 success, 8 badf, 28 inval, 48 nomem, 57 notsock, 58 notsup,
 * 70 spipe. Built with Debian's clang and wasi-libc as a preview 1 core module,
 * twice: as it is, and with -DEXPORT_CABI_REALLOC. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

/* Not declared by Debian's wasi-libc headers: imported by hand. */
__attribute__((import_module("wasi_snapshot_preview1"), import_name("proc_raise")))
uint16_t raw_proc_raise(uint8_t signal);

#ifdef EXPORT_CABI_REALLOC
/* wasmtime's component adapter allocates its stack and state through this
 * export when the module has one, instead of growing memory itself. */
__attribute__((export_name("cabi_realloc")))
void *cabi_realloc(void *old, size_t old_size, size_t align, size_t new_size) {
    (void)old_size;
    (void)align;
    return realloc(old, new_size);
}
#endif

static void show(const char *what, __wasi_errno_t e) {
    printf("%s: %s errno=%u\n", what, e == 0 ? "ok" : "err", (unsigned)e);
}

/* The descriptor of the first preopened directory, or -1. */
static int first_preopen(void) {
    for (__wasi_fd_t fd = 3; fd < 256; fd++) {
        __wasi_prestat_t p;
        if (__wasi_fd_prestat_get(fd, &p) == 0) return (int)fd;
    }
    return -1;
}

/* fd_write of zero bytes to descriptors that are not open. */
static int probe_fdwrite(void) {
    char byte = 'x';
    __wasi_ciovec_t empty = {(const uint8_t *)&byte, 0};
    __wasi_ciovec_t one = {(const uint8_t *)&byte, 1};
    __wasi_size_t n = 12345;
    __wasi_errno_t e = __wasi_fd_write(99, &empty, 0, &n);
    printf("fd_write(99, no iovecs): errno=%u nwritten=%u\n", (unsigned)e, (unsigned)n);
    n = 12345;
    e = __wasi_fd_write(99, &empty, 1, &n);
    printf("fd_write(99, one empty iovec): errno=%u nwritten=%u\n", (unsigned)e, (unsigned)n);
    e = __wasi_fd_write(99, &one, 1, &n);
    printf("fd_write(99, 1 byte): errno=%u\n", (unsigned)e);
    int dir = first_preopen();
    if (dir < 0) return 0;
    __wasi_fd_t f;
    e = __wasi_path_open(dir, 0, "closed.txt", __WASI_OFLAGS_CREAT,
                         __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_READ, 0, 0, &f);
    if (e != 0) {
        show("path_open(closed.txt)", e);
        return 1;
    }
    show("fd_close", __wasi_fd_close(f));
    n = 12345;
    e = __wasi_fd_write(f, &empty, 0, &n);
    printf("fd_write(closed, no iovecs): errno=%u nwritten=%u\n", (unsigned)e, (unsigned)n);
    n = 12345;
    e = __wasi_fd_write(f, &empty, 1, &n);
    printf("fd_write(closed, one empty iovec): errno=%u nwritten=%u\n", (unsigned)e, (unsigned)n);
    e = __wasi_fd_write(f, &one, 1, &n);
    printf("fd_write(closed, 1 byte): errno=%u\n", (unsigned)e);
    return 0;
}

/* The preopened directories, in descriptor order. */
static int probe_prestat(void) {
    for (__wasi_fd_t fd = 3; fd < 256; fd++) {
        __wasi_prestat_t p;
        __wasi_errno_t e = __wasi_fd_prestat_get(fd, &p);
        if (e == __WASI_ERRNO_BADF) break;
        if (e != 0) {
            printf("fd %u: errno=%u\n", (unsigned)fd, (unsigned)e);
            continue;
        }
        char name[256] = {0};
        size_t len = p.u.dir.pr_name_len < 255 ? p.u.dir.pr_name_len : 255;
        e = __wasi_fd_prestat_dir_name(fd, (uint8_t *)name, len);
        printf("preopen fd %u: %s (errno=%u)\n", (unsigned)fd, name, (unsigned)e);
    }
    return 0;
}

/* What becomes of the rights a program asks for. */
static int probe_rights(void) {
    int dir = first_preopen();
    if (dir < 0) {
        printf("no preopen\n");
        return 1;
    }
    __wasi_fdstat_t st;
    __wasi_errno_t e = __wasi_fd_fdstat_get(dir, &st);
    printf("preopen rights: errno=%u base=%016llx inheriting=%016llx\n", (unsigned)e,
           (unsigned long long)st.fs_rights_base, (unsigned long long)st.fs_rights_inheriting);
    e = __wasi_fd_fdstat_get(1, &st);
    printf("stdout rights: errno=%u base=%016llx\n", (unsigned)e, (unsigned long long)st.fs_rights_base);
    __wasi_fd_t f;
    e = __wasi_path_open(dir, 0, "rights.txt", __WASI_OFLAGS_CREAT,
                         __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE, 0, 0, &f);
    show("create rights.txt", e);
    if (e == 0) (void)__wasi_fd_close(f);
    e = __wasi_path_open(dir, 0, "rights.txt", 0, __WASI_RIGHTS_FD_READ, 0, 0, &f);
    show("path_open(fd_read only)", e);
    if (e == 0) {
        e = __wasi_fd_fdstat_get(f, &st);
        printf("its rights: errno=%u base=%016llx\n", (unsigned)e, (unsigned long long)st.fs_rights_base);
        char b = 'y';
        __wasi_ciovec_t one = {(const uint8_t *)&b, 1};
        __wasi_size_t n;
        show("fd_write on it", __wasi_fd_write(f, &one, 1, &n));
        __wasi_filesize_t pos;
        show("fd_seek on it (right not asked for)", __wasi_fd_seek(f, 0, __WASI_WHENCE_END, &pos));
        (void)__wasi_fd_close(f);
    }
    e = __wasi_path_open(dir, 0, "rights.txt", 0, 0, 0, 0, &f);
    show("path_open(no rights)", e);
    if (e == 0) {
        char buf[4];
        __wasi_iovec_t iov = {(uint8_t *)buf, sizeof buf};
        __wasi_size_t n;
        show("fd_read on it", __wasi_fd_read(f, &iov, 1, &n));
        show("fd_fdstat_set_rights(fd_read only)", __wasi_fd_fdstat_set_rights(f, __WASI_RIGHTS_FD_READ, 0));
        (void)__wasi_fd_close(f);
    }
    return 0;
}

static int probe_poll(void) {
    __wasi_subscription_t sub;
    __wasi_event_t ev;
    __wasi_size_t n = 777;
    __wasi_errno_t e = __wasi_poll_oneoff(&sub, &ev, 0, &n);
    printf("poll_oneoff(no subscriptions): errno=%u\n", (unsigned)e);
    memset(&sub, 0, sizeof sub);
    sub.u.tag = __WASI_EVENTTYPE_CLOCK;
    sub.u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
    sub.u.u.clock.timeout = 1000000;
    e = __wasi_poll_oneoff(&sub, &ev, 1, &n);
    printf("poll_oneoff(monotonic, 1 ms): errno=%u nevents=%u\n", (unsigned)e, (unsigned)n);
    memset(&sub, 0, sizeof sub);
    sub.u.tag = __WASI_EVENTTYPE_FD_READ;
    sub.u.u.fd_read.file_descriptor = 99;
    e = __wasi_poll_oneoff(&sub, &ev, 1, &n);
    printf("poll_oneoff(fd_read of fd 99): errno=%u\n", (unsigned)e);
    return 0;
}

/* The CPU-time clocks (2 and 3). */
static int probe_clocks(void) {
    for (__wasi_clockid_t id = 2; id <= 3; id++) {
        __wasi_timestamp_t t;
        printf("clock_time_get(%u): errno=%u\n", (unsigned)id, (unsigned)__wasi_clock_time_get(id, 1, &t));
        printf("clock_res_get(%u): errno=%u\n", (unsigned)id, (unsigned)__wasi_clock_res_get(id, &t));
    }
    return 0;
}

/* Descriptors beyond the first few: opens the same file until refused. */
static int probe_open(int want) {
    int dir = first_preopen();
    if (dir < 0) {
        printf("no preopen\n");
        return 1;
    }
    int opened = 0;
    __wasi_errno_t e = 0;
    for (; opened < want; opened++) {
        __wasi_fd_t f;
        e = __wasi_path_open(dir, 0, "many.txt", __WASI_OFLAGS_CREAT, __WASI_RIGHTS_FD_READ, 0, 0, &f);
        if (e) break;
    }
    printf("opened %d of %d, then errno=%u\n", opened, want, (unsigned)e);
    return 0;
}

/* A block spanning the memory the adapter grew before malloc's first use,
 * filled, then one WASI call: how many of its bytes changed? */
static int probe_heap(void) {
    size_t len = 300000;
    uint8_t *buf = malloc(len);
    if (!buf) {
        printf("malloc failed\n");
        return 1;
    }
    memset(buf, 0xAA, len);
    __wasi_size_t n;
    __wasi_ciovec_t nl = {(const uint8_t *)"\n", 1};
    (void)__wasi_fd_write(1, &nl, 1, &n);
    size_t changed = 0;
    for (size_t i = 0; i < len; i++) changed += buf[i] != 0xAA;
    printf("bytes changed by one fd_write: %zu\n", changed);
    return 0;
}

static int probe_args(int argc, char **argv) {
    size_t total = 0;
    for (int i = 0; i < argc; i++) total += strlen(argv[i]) + 1;
    const char *big = getenv("BIG");
    printf("argc=%d argument bytes=%zu BIG=%zu bytes\n", argc, total, big ? strlen(big) : (size_t)0);
    return 0;
}

/* Operations whose answers were compared with wasmtime's own preview 1. */
static int probe_misc(void) {
    __wasi_filesize_t pos;
    show("fd_seek(stdout)", __wasi_fd_seek(1, 0, __WASI_WHENCE_CUR, &pos));
    show("fd_tell(stdout)", __wasi_fd_tell(1, &pos));
    show("fd_fdstat_set_flags(stdout, append)", __wasi_fd_fdstat_set_flags(1, __WASI_FDFLAGS_APPEND));
    show("fd_renumber(1, 50)", __wasi_fd_renumber(1, 50));
    show("sock_shutdown(1)", __wasi_sock_shutdown(1, __WASI_SDFLAGS_WR));
    int dir = first_preopen();
    if (dir < 0) return 0;
    __wasi_fd_t f;
    __wasi_errno_t e = __wasi_path_open(dir, 0, "alloc.txt", __WASI_OFLAGS_CREAT,
                                        __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_READ, 0, 0, &f);
    if (e == 0) {
        show("fd_allocate(file)", __wasi_fd_allocate(f, 0, 10));
        (void)__wasi_fd_close(f);
    }
    const char *target = "0123456789012345678901234567890123456789";
    show("path_symlink", __wasi_path_symlink(target, dir, "link"));
    uint8_t link[10];
    __wasi_size_t used = 0;
    e = __wasi_path_readlink(dir, "link", link, sizeof link, &used);
    printf("path_readlink(40-byte target, 10-byte buffer): errno=%u used=%u\n", (unsigned)e, (unsigned)used);
    uint8_t buf[512];
    e = __wasi_fd_readdir(dir, buf, sizeof buf, 0, &used);
    printf("fd_readdir:");
    for (size_t off = 0; e == 0 && off + sizeof(__wasi_dirent_t) <= used;) {
        __wasi_dirent_t d;
        memcpy(&d, buf + off, sizeof d);
        off += sizeof d;
        if (off + d.d_namlen > used) break;
        printf(" %.*s", (int)d.d_namlen, (const char *)buf + off);
        off += d.d_namlen;
    }
    printf("\n");
    return 0;
}

int main(int argc, char **argv) {
    /* Unbuffered, so that what was printed before a trap is not lost. */
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *probe = argc > 1 ? argv[1] : "";
    __wasi_fd_t fd = 12345;
    if (!strcmp(probe, "fdwrite")) return probe_fdwrite();
    if (!strcmp(probe, "exit")) __wasi_proc_exit(argc > 2 ? (__wasi_exitcode_t)atoi(argv[2]) : 0);
    if (!strcmp(probe, "prestat")) return probe_prestat();
    if (!strcmp(probe, "rights")) return probe_rights();
    if (!strcmp(probe, "poll")) return probe_poll();
    if (!strcmp(probe, "clocks")) return probe_clocks();
    if (!strcmp(probe, "open")) return probe_open(argc > 2 ? atoi(argv[2]) : 200);
    if (!strcmp(probe, "heap")) return probe_heap();
    if (!strcmp(probe, "args")) return probe_args(argc, argv);
    if (!strcmp(probe, "misc")) return probe_misc();
    if (!strcmp(probe, "accept")) show("sock_accept(0)", __wasi_sock_accept(0, 0, &fd));
    else if (!strcmp(probe, "recv")) {
        uint8_t b;
        __wasi_iovec_t iov = {&b, 1};
        __wasi_size_t n;
        __wasi_roflags_t flags;
        show("sock_recv(0)", __wasi_sock_recv(0, &iov, 1, 0, &n, &flags));
    } else if (!strcmp(probe, "send")) {
        __wasi_ciovec_t iov = {(const uint8_t *)"x", 1};
        __wasi_size_t n;
        show("sock_send(1)", __wasi_sock_send(1, &iov, 1, 0, &n));
    } else if (!strcmp(probe, "raise")) show("proc_raise", raw_proc_raise(15));
    else {
        fprintf(stderr, "usage: p1probe fdwrite|exit N|prestat|rights|poll|clocks|open N|heap|args|misc|accept|recv|send|raise\n");
        return 2;
    }
    return 0;
}

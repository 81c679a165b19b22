/*
 * berth-supervisor: the long-lived half of a container's shim.
 *
 * The Python shim builds the container and starts its first process, then
 * execs this program in the same process (same pid, so it stays the parent
 * of the container's init). What remains for the container's whole life is
 * small: pump stdout and stderr into CRI-format log records with nanosecond
 * timestamps and size-based rotation, wait for the init, record the exit in
 * state.json, remove the cgroups, and hand back to the Python shim when the
 * restart policy wants another run. A few hundred kilobytes per container,
 * where a Python process costs megabytes.
 *
 * argv: dir init_pid out_fd err_fd (-1 with a terminal) max_size max_files policy max_retries
 *       restart_count started_at shim_start oom_file cgroup_dirs(':'-joined)
 *       python
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U /* Linux 6.3: executable even with vm.memfd_noexec=1 */
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020 /* Linux 6.3: the mode cannot change either */
#endif

#define MAX_LINE (16 * 1024)
#define CHUNK 65536

static const char *dir;
static char log_path[4096];
static int log_fd = -1;
static long long log_size, max_size;
static int max_files;

struct stream {
    const char *name;
    int fd;
    char pending[MAX_LINE];
    size_t pending_len;
};

static void stamp(char *out, size_t size)
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%09ldZ", now.tv_nsec);
}

static void write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t done = write(fd, data, len);
        if (done < 0) {
            if (errno == EINTR)
                continue;
            return; /* a full disk must not stop the container: records are dropped */
        }
        data += done;
        len -= (size_t)done;
    }
}

static void rotate(void)
{
    char older[4200], newer[4200];
    close(log_fd);
    for (int index = max_files - 1; index > 0; index--) {
        if (index > 1)
            snprintf(older, sizeof older, "%s.%d", log_path, index - 1);
        else
            snprintf(older, sizeof older, "%s", log_path);
        snprintf(newer, sizeof newer, "%s.%d", log_path, index);
        rename(older, newer);
    }
    if (max_files == 1)
        truncate(log_path, 0);
    log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    log_size = 0;
}

static void record(const char *when, const char *stream, char tag, const char *data, size_t len)
{
    char head[128];
    int head_len = snprintf(head, sizeof head, "%s %s %c ", when, stream, tag);
    long long size = head_len + (long long)len + 1;
    if (max_size > 0 && log_size > 0 && log_size + size > max_size)
        rotate();
    /* one write per record keeps records whole for readers of the file */
    char *buffer = malloc((size_t)size);
    if (!buffer)
        return;
    memcpy(buffer, head, (size_t)head_len);
    memcpy(buffer + head_len, data, len);
    buffer[size - 1] = '\n';
    write_all(log_fd, buffer, (size_t)size);
    free(buffer);
    log_size += size;
}

static void consume(struct stream *s, const char *data, size_t len)
{
    char when[64];
    stamp(when, sizeof when);
    while (len > 0) {
        const char *newline = memchr(data, '\n', len);
        size_t take = newline ? (size_t)(newline - data) : len;
        if (s->pending_len + take > MAX_LINE) {
            size_t room = MAX_LINE - s->pending_len;
            memcpy(s->pending + s->pending_len, data, room);
            record(when, s->name, 'P', s->pending, MAX_LINE);
            s->pending_len = 0;
            data += room;
            len -= room;
            continue;
        }
        memcpy(s->pending + s->pending_len, data, take);
        s->pending_len += take;
        if (!newline)
            return;
        record(when, s->name, 'F', s->pending, s->pending_len);
        s->pending_len = 0;
        data += take + 1;
        len -= take + 1;
    }
}

static void pump(struct stream *streams)
{
    static char chunk[CHUNK];
    struct pollfd fds[2];
    int open_streams = 0;
    for (int i = 0; i < 2; i++) {
        fds[i].fd = streams[i].fd; /* -1 (ignored by poll) for a terminal's absent stderr */
        fds[i].events = POLLIN;
        open_streams += streams[i].fd >= 0;
    }
    while (open_streams > 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t got = read(fds[i].fd, chunk, sizeof chunk);
            if (got > 0) {
                consume(&streams[i], chunk, (size_t)got);
            } else if (got == 0 || errno != EINTR) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_streams--;
            }
        }
    }
    char when[64];
    stamp(when, sizeof when);
    for (int i = 0; i < 2; i++)
        if (streams[i].pending_len)
            record(when, streams[i].name, 'P', streams[i].pending, streams[i].pending_len);
}

/* A small kernel or state file, NUL-terminated; false when it cannot be read. */
static int read_small(const char *path, char *text, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t got = read(fd, text, size - 1);
    close(fd);
    if (got <= 0)
        return 0;
    text[got] = 0;
    return 1;
}

static int oom_killed(const char *path)
{
    char text[4096];
    if (!read_small(path, text, sizeof text))
        return 0;
    char *line = strstr(text, "oom_kill ");
    return line && atol(line + 9) > 0;
}

static void remove_cgroups(char *dirs)
{
    for (char *path = strtok(dirs, ":"); path; path = strtok(NULL, ":")) {
        for (int attempt = 0; attempt < 100; attempt++) {
            if (rmdir(path) == 0 || errno == ENOENT)
                break;
            usleep(10000);
        }
    }
}

static long current_seq(const char *state_path)
{
    char text[8192];
    if (!read_small(state_path, text, sizeof text))
        return 0;
    char *seq = strstr(text, "\"seq\": ");
    return seq ? atol(seq + 7) : 0;
}

/* The same fields, in the same JSON shape, as workers/engine/state.py writes. */
static void write_state(const char *state, int exit_code, int oom, int restart_count,
                        const char *started_at, const char *shim_start)
{
    char path[4200], tmp[4200], finished[64], text[2048];
    snprintf(path, sizeof path, "%s/state.json", dir);
    snprintf(tmp, sizeof tmp, "%s/.state.%d.tmp", dir, getpid());
    stamp(finished, sizeof finished);
    int len = snprintf(text, sizeof text,
        "{\"seq\": %ld, \"state\": \"%s\", \"pid\": null, \"shim_pid\": %d, "
        "\"shim_start\": %s, \"exit_code\": %d, \"started_at\": \"%s\", "
        "\"finished_at\": \"%s\", \"error\": \"\", \"oom_killed\": %s, "
        "\"restart_count\": %d}",
        current_seq(path) + 1, state, getpid(), shim_start, exit_code, started_at, finished,
        oom ? "true" : "false", restart_count);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    write_all(fd, text, (size_t)len);
    close(fd);
    rename(tmp, path);
}

static int wants_restart(const char *policy, int max_retries, int exit_code, int restarts)
{
    char marker[4200];
    snprintf(marker, sizeof marker, "%s/stop-requested", dir);
    if (access(marker, F_OK) == 0)
        return 0;
    if (!strcmp(policy, "always") || !strcmp(policy, "unless-stopped"))
        return 1;
    if (!strcmp(policy, "on-failure"))
        return exit_code != 0 && (max_retries == 0 || restarts < max_retries);
    return 0;
}

/*
 * A sealed memfd copy of the interpreter, close-on-exec (the CVE-2019-5736 class):
 * the resumed shim forks the container's init, which is this binary until its
 * execve, so a `#!/proc/self/exe` script in the container would run it there and
 * reach it through /proc/<pid>/exe. It must be a copy nothing can write, never the
 * host's file (workers/engine/sealed.py does the same for the zygote).
 */
static int sealed_copy(const char *path)
{
    int copy = memfd_create("berth-python", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (copy < 0 && errno == EINVAL) /* before Linux 6.3 every memfd is executable */
        copy = memfd_create("berth-python", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (copy < 0)
        return -1;
    int source = open(path, O_RDONLY | O_CLOEXEC);
    struct stat info;
    int ok = source >= 0 && fstat(source, &info) == 0;
    off_t done = 0;
    while (ok && done < info.st_size) {
        ssize_t sent = sendfile(copy, source, &done, (size_t)(info.st_size - done));
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent == 0)
            errno = EIO; /* the file shrank while copied */
        ok = sent > 0;
    }
    if (ok && fchmod(copy, 0511) == 0) {
        fcntl(copy, F_ADD_SEALS, F_SEAL_EXEC); /* best effort: older kernels refuse it */
        ok = fcntl(copy, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) == 0;
    } else {
        ok = 0;
    }
    int saved = errno;
    if (source >= 0)
        close(source);
    if (!ok) {
        close(copy);
        errno = saved;
        return -1;
    }
    return copy;
}

/* The writing end of the container's open stdin (BERTH_STDIN_FD), held so stdin stays
 * open between attachers; SIGURG (ignored by default, so a signal that arrives while
 * the Python shim runs is harmless) closes it: the container then reads end of file,
 * as after `docker run -i` with piped input. */
static int stdin_fd = -1;

static void close_stdin(int signo)
{
    (void)signo;
    if (stdin_fd >= 0) {
        close(stdin_fd);
        stdin_fd = -1;
    }
}

int main(int argc, char **argv)
{
    if (argc != 15) {
        fprintf(stderr, "berth-supervisor: expected 14 arguments, got %d\n", argc - 1);
        return 2;
    }
    dir = argv[1];
    pid_t init = (pid_t)atol(argv[2]);
    struct stream streams[2] = {{"stdout", atoi(argv[3]), {0}, 0},
                                {"stderr", atoi(argv[4]), {0}, 0}};
    max_size = atoll(argv[5]);
    max_files = atoi(argv[6]) > 0 ? atoi(argv[6]) : 1;
    const char *policy = argv[7];
    int max_retries = atoi(argv[8]), restarts = atoi(argv[9]);
    const char *started_at = argv[10], *shim_start = argv[11], *oom_file = argv[12];
    char *cgroup_dirs = argv[13];
    const char *python = argv[14];

    const char *held = getenv("BERTH_STDIN_FD");
    stdin_fd = held ? atoi(held) : -1;
    struct sigaction on_urg;
    memset(&on_urg, 0, sizeof on_urg);
    on_urg.sa_handler = close_stdin;
    on_urg.sa_flags = SA_RESTART;
    sigemptyset(&on_urg.sa_mask);
    sigaction(SIGURG, &on_urg, NULL);

    struct timespec began, ended;
    clock_gettime(CLOCK_MONOTONIC, &began);
    snprintf(log_path, sizeof log_path, "%s/container.log", dir);
    log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    struct stat info;
    log_size = fstat(log_fd, &info) == 0 ? info.st_size : 0;

    pump(streams);
    close(log_fd);
    int status = 0;
    while (waitpid(init, &status, 0) < 0 && errno == EINTR)
        ;
    int exit_code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    int oom = oom_killed(oom_file);
    remove_cgroups(cgroup_dirs);
    clock_gettime(CLOCK_MONOTONIC, &ended);

    if (!wants_restart(policy, max_retries, exit_code, restarts)) {
        write_state("exited", exit_code, oom, restarts, started_at, shim_start);
        return 0;
    }
    write_state("restarting", exit_code, oom, restarts + 1, started_at, shim_start);
    char ran_for[32], next[32];
    snprintf(ran_for, sizeof ran_for, "%.3f",
             (double)(ended.tv_sec - began.tv_sec) + (ended.tv_nsec - began.tv_nsec) / 1e9);
    snprintf(next, sizeof next, "%d", restarts);
    /* argv[0] stays the interpreter's path: Python finds its prefix and venv from it */
    char *resume[] = {(char *)python, "-m", "workers.engine.shim", "--resume", (char *)dir,
                      next, ran_for, NULL};
    int exe = sealed_copy(python);
    if (exe >= 0)
        fexecve(exe, resume, environ);
    fprintf(stderr, "berth-supervisor: cannot run a sealed copy of %s to restart: %s\n",
            python, strerror(errno));
    write_state("exited", exit_code, oom, restarts, started_at, shim_start);
    return 1;
}

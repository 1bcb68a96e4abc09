/* cgi-server: the fork-per-request baseline of the benchmarks, standing for
 * platforms without warm instances. It listens on 127.0.0.1:PORT (0 picks a
 * free port, written to PORTFILE once listening) and for every connection
 * forks a child that reads the request head, sets the CGI/1.1 variables in a
 * clean environment, writes the status line and execs SCRIPT with the socket
 * as its stdout (the script prints its header lines and body, like an nph-
 * CGI script). So every request costs one fork and one exec, and every
 * answer ends with the connection (Connection: close).
 *
 * usage: cgi-server PORT PORTFILE SCRIPT    (stops on SIGTERM/SIGINT) */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX 8192
#define READ_TIMEOUT_MS 5000

/* Opens the listening socket on 127.0.0.1:port; returns it and the port. */
static int listen_loopback(int port, int *bound_port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("cgi-server: socket");
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        fprintf(stderr, "cgi-server: listening on 127.0.0.1:%d: %s\n", port, strerror(errno));
        close(fd);
        return -1;
    }
    *bound_port = ntohs(a.sin_port);
    return fd;
}

/* Writes the bound port to path (via a temp file, so readers never see half). */
static int write_port_file(const char *path, int port)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "cgi-server: writing %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Reads the request head (up to the blank line) into buf; its length or -1. */
static int read_head(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    while (len + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, READ_TIMEOUT_MS) <= 0)
            return -1;
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            return (int)len;
    }
    return -1;
}

/* The child's whole life: one request, one exec of script. Never returns. */
static void serve_child(int fd, const char *script, int port)
{
    char head[HEAD_MAX];
    if (read_head(fd, head, sizeof(head)) < 0)
        _exit(1);
    char method[16], target[2048];
    if (sscanf(head, "%15s %2047s", method, target) != 2)
        _exit(1);
    char *query = strchr(target, '?');
    if (query)
        *query++ = '\0';
    /* A clean CGI/1.1 environment, nothing inherited from the server. */
    static char env[8][2200];
    char *envp[9];
    int n = 0;
    snprintf(env[n++], sizeof(env[0]), "GATEWAY_INTERFACE=CGI/1.1");
    snprintf(env[n++], sizeof(env[0]), "SERVER_PROTOCOL=HTTP/1.1");
    snprintf(env[n++], sizeof(env[0]), "REMOTE_ADDR=127.0.0.1");
    snprintf(env[n++], sizeof(env[0]), "SERVER_PORT=%d", port);
    snprintf(env[n++], sizeof(env[0]), "REQUEST_METHOD=%s", method);
    snprintf(env[n++], sizeof(env[0]), "PATH_INFO=%s", target);
    snprintf(env[n++], sizeof(env[0]), "QUERY_STRING=%s", query ? query : "");
    snprintf(env[n++], sizeof(env[0]), "PATH=/usr/bin:/bin");
    for (int i = 0; i < n; i++)
        envp[i] = env[i];
    envp[n] = NULL;
    static const char status[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n";
    if (write(fd, status, sizeof(status) - 1) != (ssize_t)(sizeof(status) - 1) || dup2(fd, STDOUT_FILENO) < 0)
        _exit(1);
    close(fd);
    execle(script, script, (char *)NULL, envp);
    _exit(127);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fputs("usage: cgi-server PORT PORTFILE SCRIPT\n", stderr);
        return 2;
    }
    if (access(argv[3], X_OK) != 0) {
        fprintf(stderr, "cgi-server: %s is not an executable script: %s\n", argv[3], strerror(errno));
        return 2;
    }
    int port = 0, lfd = listen_loopback(atoi(argv[1]), &port);
    if (lfd < 0 || write_port_file(argv[2], port) != 0)
        return 1;
    /* Children are never waited for: the kernel reaps them. */
    signal(SIGCHLD, SIG_IGN);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
                continue;
            perror("cgi-server: accept");
            return 1;
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(lfd);
            signal(SIGCHLD, SIG_DFL);
            serve_child(fd, argv[3], port);
        }
        if (pid < 0)
            perror("cgi-server: fork");
        close(fd);
    }
}

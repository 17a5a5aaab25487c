/*
 * sendto_loop: the reference media sender for benches/media.sh, the least a
 * program can do to send N G.711 streams with a socket per stream (as with
 * per-call RTP ports): one sendto per packet, nothing else.
 *
 * Every 20 ms each stream sends a 172-byte RTP packet (12-byte header, PT 0,
 * 160 bytes of µ-law silence 0xFF) to 127.0.0.1. Streams are spread evenly over
 * the 20 ms (as calls that started at different times), the loop wakes on
 * absolute 1 ms deadlines (clock_nanosleep TIMER_ABSTIME, so lateness does not
 * accumulate) and sends every packet due at that tick; after a late wake-up it
 * catches up tick by tick. CPU per packet is getrusage (user + system) over the
 * sending loop divided by the packets sent.
 *
 *   cc -O2 -o sendto_loop sendto_loop.c
 *   sendto_loop --streams 5000 --ports 40000 --seconds 60
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PTIME_MS 20
#define SAMPLES (8 * PTIME_MS) /* 8 kHz */
#define PKT (12 + SAMPLES)

struct stream {
    int fd;
    uint16_t seq;
    uint32_t ts, ssrc;
    struct sockaddr_in to;
};

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Deterministic per-stream "random" starting values (splitmix64), so runs are
 * comparable and SSRCs differ. */
static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static void usage(void)
{
    fprintf(stderr, "usage: sendto_loop --streams N --ports P[-Q] [--seconds S]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long n = 0;
    int port_lo = 0, port_hi = 0;
    double seconds = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--streams"))
            n = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--ports")) {
            if (sscanf(argv[i + 1], "%d-%d", &port_lo, &port_hi) != 2)
                port_hi = port_lo = atoi(argv[i + 1]);
        } else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
        else
            usage();
    }
    if (argc % 2 == 0 || n <= 0 || port_lo <= 0 || port_hi < port_lo || port_hi > 65535)
        usage();

    /* One descriptor per stream: lift the soft limit to the hard one. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct stream *s = calloc((size_t)n, sizeof *s);
    if (!s) {
        perror("calloc");
        return 2;
    }
    for (long i = 0; i < n; i++) {
        /* Blocking sockets like a plain RTP sender's; each bound to its own
         * port on 127.0.0.1, as a call's RTP port would be. */
        s[i].fd = socket(AF_INET, SOCK_DGRAM, 0);
        if (s[i].fd < 0) {
            fprintf(stderr, "socket %ld: %s (ulimit -n?)\n", i, strerror(errno));
            return 2;
        }
        struct sockaddr_in me = {.sin_family = AF_INET};
        me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(s[i].fd, (struct sockaddr *)&me, sizeof me) < 0) {
            perror("bind");
            return 2;
        }
        uint64_t r = mix((uint64_t)i);
        s[i].seq = (uint16_t)r;
        s[i].ts = (uint32_t)(r >> 16);
        s[i].ssrc = (uint32_t)(r >> 32) ^ (uint32_t)i;
        s[i].to.sin_family = AF_INET;
        s[i].to.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* never anywhere else */
        s[i].to.sin_port = htons((uint16_t)(port_lo + i % (port_hi - port_lo + 1)));
    }

    /* Stream i sends in the ticks congruent to slot(i) = i * 20 / n (mod 20):
     * first[k] .. first[k+1]-1 are the streams of slot k. */
    long first[PTIME_MS + 1];
    for (int k = 0; k <= PTIME_MS; k++)
        first[k] = (n * k + PTIME_MS - 1) / PTIME_MS;

    uint8_t pkt[PKT];
    memset(pkt, 0xFF, sizeof pkt); /* µ-law silence */
    pkt[0] = 0x80;                 /* V=2, no padding, extension or CSRC */
    pkt[1] = 0;                    /* PT 0 (PCMU), no marker */

    long ticks = (long)(seconds * 1000);
    uint64_t sent = 0, errors = 0, late_ticks = 0;
    int64_t max_lag_ns = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    t0.tv_sec += 1; /* a clean start: every stream's first deadline in the future */
    double cpu0 = cpu_s();
    for (long t = 0; t < ticks && !stop; t++) {
        struct timespec due = t0;
        due.tv_sec += t / 1000;
        due.tv_nsec += (t % 1000) * 1000000L;
        if (due.tv_nsec >= 1000000000L)
            due.tv_sec++, due.tv_nsec -= 1000000000L;
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) == EINTR && !stop)
            ;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t lag = (int64_t)(now.tv_sec - due.tv_sec) * 1000000000 + (now.tv_nsec - due.tv_nsec);
        if (lag > max_lag_ns)
            max_lag_ns = lag;
        if (lag > 1000000)
            late_ticks++;
        int slot = (int)(t % PTIME_MS);
        for (long i = first[slot]; i < first[slot + 1]; i++) {
            struct stream *st = &s[i];
            pkt[2] = (uint8_t)(st->seq >> 8);
            pkt[3] = (uint8_t)st->seq;
            uint32_t v = htonl(st->ts);
            memcpy(pkt + 4, &v, 4);
            v = htonl(st->ssrc);
            memcpy(pkt + 8, &v, 4);
            if (sendto(st->fd, pkt, sizeof pkt, 0, (struct sockaddr *)&st->to, sizeof st->to) ==
                (ssize_t)sizeof pkt)
                sent++;
            else
                errors++;
            /* A packet lost to an error still advances seq/ts, as in real time. */
            st->seq++;
            st->ts += SAMPLES;
        }
    }
    double cpu = cpu_s() - cpu0;
    printf("{\"streams\": %ld, \"packets\": %llu, \"send_errors\": %llu, \"cpu_s\": %.3f, "
           "\"cpu_us_per_packet\": %.4f, \"late_ticks\": %llu, \"max_lag_ms\": %.3f}\n",
           n, (unsigned long long)sent, (unsigned long long)errors, cpu,
           sent ? cpu * 1e6 / (double)sent : 0.0, (unsigned long long)late_ticks,
           (double)max_lag_ns / 1e6);
    return 0;
}

/*
 * rtp_receiver: an RTP sink that is not sipwright, so media benchmarks are judged
 * by the same independent yardstick whichever tool sends.
 *
 * Listens on UDP ports of 127.0.0.1, reads with recvmmsg and takes each packet's
 * arrival time from the kernel (SO_TIMESTAMPNS: stamped when the packet entered
 * the socket, so this process's own scheduling delays do not show up as jitter).
 * Streams are told apart by source address + SSRC, so many calls may send to one
 * port (SIPp 3.6.1 sends every call's RTP from one socket).
 *
 * Per stream: RFC 3550 A.1 sequence tracking (wrap, resync after a big jump),
 * loss = expected - received, duplicates, A.8 interarrival jitter (telephone-event
 * packets skipped: their timestamp is the event's start, not the packet's time),
 * the largest jitter seen, and RFC 4733 events (one digit per event timestamp).
 *
 * Statistics cover a window: packets of the first --warmup seconds are only
 * counted (calls still ramping up), the next --seconds are measured, and with
 * --tail the total keeps being counted until SIGINT/SIGTERM (a sender's CPU per
 * packet needs every packet it sent). One JSON object is printed on stdout.
 * It reads in batches, at most once per --batch-ms, to take little CPU from
 * the sender it measures on a small machine.
 *
 *   cc -O2 -o rtp_receiver rtp_receiver.c -lm
 *   rtp_receiver --ports 40000-40003 --warmup 5 --seconds 60 --te-pt 101
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 1024
#define BATCH 128
#define BUF_SIZE 2048
#define MAX_DROPOUT 3000 /* RFC 3550 A.1 */
#define MAX_MISORDER 100
#define SEQ_MOD 65536u

struct stream {
    uint32_t ip, ssrc;
    uint16_t port;
    uint8_t used, have_audio;
    uint8_t have_te, pad;
    uint16_t max_seq;
    uint32_t bad_seq;      /* next sequence number expected after a big jump */
    uint64_t cycles;       /* count of sequence wraps << 16 */
    uint64_t base;         /* extended sequence number of the segment's start */
    uint64_t prior_expected; /* from segments before a resync */
    uint64_t seen;         /* bit k: max_seq - k arrived (duplicate detection) */
    uint64_t received, duplicates, reordered;
    double last_arrival;   /* timestamp units */
    uint32_t last_ts, last_te_ts;
    double jitter, jitter_max; /* timestamp units */
};

static struct stream *table;
static size_t table_mask, n_streams, max_streams = 16384;
static uint64_t untracked, invalid, rtcp;
static uint64_t packets_total, packets_window, digits;
static char digit_log[65];
static size_t digit_log_len;
static int te_pt = -1;
static double clock_rate = 8000.0;
static volatile sig_atomic_t stop;
static int64_t t0_ns = -1; /* first kernel timestamp in the window */

static void on_signal(int sig) { (void)sig; stop = 1; }

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
    perror(what);
    exit(2);
}

/* A murmur3-style finaliser: source ports and SSRCs of one sender are often
 * sequential, and linear probing needs them spread. */
static size_t hash_key(uint32_t ip, uint16_t port, uint32_t ssrc)
{
    uint64_t h = ((uint64_t)ip << 32 | ssrc) ^ ((uint64_t)port * 0x9E3779B97F4A7C15ull);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return (size_t)h;
}

static struct stream *lookup(uint32_t ip, uint16_t port, uint32_t ssrc)
{
    size_t i = hash_key(ip, port, ssrc) & table_mask;
    for (;;) {
        struct stream *s = &table[i];
        if (!s->used) {
            /* The table is twice --max-streams: probes stay short. */
            if (n_streams >= max_streams)
                return NULL;
            memset(s, 0, sizeof *s);
            s->used = 1;
            s->ip = ip;
            s->port = port;
            s->ssrc = ssrc;
            n_streams++;
            return s;
        }
        if (s->ip == ip && s->port == port && s->ssrc == ssrc)
            return s;
        i = (i + 1) & table_mask;
    }
}

static void seq_init(struct stream *s, uint16_t seq)
{
    s->max_seq = seq;
    s->cycles = 0;
    s->base = seq;
    s->bad_seq = SEQ_MOD + 1;
    s->seen = 1;
}

static uint64_t expected(const struct stream *s)
{
    return s->prior_expected + (s->cycles + s->max_seq) - s->base + 1;
}

/* Returns 0 for a duplicate (not counted as received), 1 otherwise. */
static int seq_update(struct stream *s, uint16_t seq)
{
    uint16_t udelta = (uint16_t)(seq - s->max_seq);
    if (s->received == 0 && s->duplicates == 0) {
        seq_init(s, seq);
        return 1;
    }
    if (udelta == 0) {
        return 0;
    } else if (udelta < MAX_DROPOUT) {
        if (seq < s->max_seq)
            s->cycles += SEQ_MOD;
        s->seen = udelta >= 64 ? 1 : (s->seen << udelta) | 1;
        s->max_seq = seq;
        return 1;
    } else if (udelta <= SEQ_MOD - MAX_MISORDER) {
        /* A big jump: the sender restarted or lost a lot. As in A.1, believe it
         * when the next packet follows on; the segment so far keeps its count. */
        if (seq == s->bad_seq) {
            s->prior_expected += (s->cycles + s->max_seq) - s->base + 1;
            seq_init(s, seq);
            s->base = (uint64_t)seq + SEQ_MOD - 1; /* the packet before counts */
            s->cycles = SEQ_MOD;
            return 1;
        }
        s->bad_seq = (uint16_t)(seq + 1);
        return 1;
    } else {
        /* Late (reordered) or duplicate. */
        uint16_t back = (uint16_t)(s->max_seq - seq);
        if (back < 64) {
            uint64_t bit = 1ull << back;
            if (s->seen & bit)
                return 0;
            s->seen |= bit;
        }
        s->reordered++;
        return 1;
    }
}

static void handle_packet(const uint8_t *p, size_t len, const struct sockaddr_in *from,
                          int64_t arrival_ns)
{
    if (len < 12 || (p[0] >> 6) != 2) {
        invalid++;
        return;
    }
    uint8_t pt = p[1] & 0x7f;
    if (pt >= 72 && pt <= 76) { /* RTCP SR/RR/SDES/BYE/APP sent to the same port */
        rtcp++;
        return;
    }
    uint16_t seq = (uint16_t)(p[2] << 8 | p[3]);
    uint32_t ts = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
    uint32_t ssrc = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | (uint32_t)p[10] << 8 | p[11];
    size_t off = 12 + 4 * (size_t)(p[0] & 0x0f);
    if ((p[0] & 0x10) && off + 4 <= len)
        off += 4 + 4 * (size_t)(p[off + 2] << 8 | p[off + 3]);
    size_t end = len;
    if ((p[0] & 0x20) && len > 12)
        end = p[len - 1] <= len ? len - p[len - 1] : 0;
    if (off > end) {
        invalid++;
        return;
    }

    struct stream *s = lookup(from->sin_addr.s_addr, from->sin_port, ssrc);
    if (!s) {
        untracked++;
        return;
    }
    packets_window++;
    if (!seq_update(s, seq)) {
        s->duplicates++;
        return;
    }
    s->received++;

    if (te_pt >= 0 && pt == te_pt) {
        /* RFC 4733: every packet of an event carries the event's start timestamp
         * (the final one three times), so a new timestamp is a new digit. */
        if (end - off >= 4 && (!s->have_te || ts != s->last_te_ts)) {
            s->have_te = 1;
            s->last_te_ts = ts;
            digits++;
            if (digit_log_len < sizeof digit_log - 1)
                digit_log[digit_log_len++] = "0123456789*#ABCD"[p[off] & 15];
        }
        return;
    }

    if (t0_ns < 0)
        t0_ns = arrival_ns;
    double arrival = (double)(arrival_ns - t0_ns) * clock_rate / 1e9;
    if (s->have_audio) {
        /* A.8: D = (Rj - Ri) - (Sj - Si); the signed 32-bit difference survives
         * the timestamp's wrap. */
        double d = (arrival - s->last_arrival) - (double)(int32_t)(ts - s->last_ts);
        if (d < 0)
            d = -d;
        s->jitter += (d - s->jitter) / 16.0;
        if (s->jitter > s->jitter_max)
            s->jitter_max = s->jitter;
    }
    s->have_audio = 1;
    s->last_arrival = arrival;
    s->last_ts = ts;
}

static int fds[MAX_PORTS];
static uint32_t drops[MAX_PORTS];
static int window_open;
static int64_t window_start_rt, window_end_rt;
static uint8_t bufs[BATCH][BUF_SIZE];
static char ctrl[BATCH][CMSG_SPACE(sizeof(struct timespec)) + CMSG_SPACE(sizeof(uint32_t))];
static struct sockaddr_in from[BATCH];
static struct iovec iov[BATCH];
static struct mmsghdr msgs[BATCH];

/* Read socket idx until it is empty, BATCH datagrams per system call. */
static void drain(int idx)
{
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = BUF_SIZE;
            msgs[i].msg_hdr = (struct msghdr){
                .msg_name = &from[i],
                .msg_namelen = sizeof from[i],
                .msg_iov = &iov[i],
                .msg_iovlen = 1,
                .msg_control = ctrl[i],
                .msg_controllen = sizeof ctrl[i],
            };
        }
        int got = recvmmsg(fds[idx], msgs, BATCH, MSG_DONTWAIT, NULL);
        if (got <= 0)
            return;
        packets_total += (uint64_t)got;
        for (int i = 0; i < got; i++) {
            int64_t stamp = -1;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c;
                 c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
                if (c->cmsg_level != SOL_SOCKET)
                    continue;
                if (c->cmsg_type == SCM_TIMESTAMPNS) {
                    struct timespec ts;
                    memcpy(&ts, CMSG_DATA(c), sizeof ts);
                    stamp = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
                } else if (c->cmsg_type == SO_RXQ_OVFL) {
                    /* The socket's drop count so far, carried by every packet. */
                    uint32_t d;
                    memcpy(&d, CMSG_DATA(c), sizeof d);
                    if (d > drops[idx])
                        drops[idx] = d;
                }
            }
            if (window_open && stamp >= window_start_rt && stamp < window_end_rt)
                handle_packet(bufs[i], msgs[i].msg_len, &from[i], stamp);
        }
        if (got < BATCH)
            return;
    }
}

static void parse_ports(const char *spec, int *ports, int *n)
{
    char *copy = strdup(spec), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int a, b;
        if (sscanf(tok, "%d-%d", &a, &b) != 2)
            b = a = atoi(tok);
        if (a <= 0 || b > 65535 || b < a) {
            fprintf(stderr, "bad port range: %s\n", tok);
            exit(2);
        }
        for (int p = a; p <= b; p++) {
            if (*n >= MAX_PORTS) {
                fprintf(stderr, "at most %d ports\n", MAX_PORTS);
                exit(2);
            }
            ports[(*n)++] = p;
        }
    }
    free(copy);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: rtp_receiver --ports A-B[,C...] [--seconds N] [--warmup N] [--tail N]\n"
            "                    [--te-pt PT] [--clock-rate HZ] [--max-streams N] [--rcvbuf BYTES]\n"
            "                    [--batch-ms MS (default 1)]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int ports[MAX_PORTS], n_ports = 0;
    double seconds = 10, warmup = 0, tail = 0;
    int rcvbuf = 64 << 20;
    long batch_ns = 1000000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(a, "--ports"))
            parse_ports(v, ports, &n_ports);
        else if (!strcmp(a, "--seconds"))
            seconds = atof(v);
        else if (!strcmp(a, "--warmup"))
            warmup = atof(v);
        else if (!strcmp(a, "--tail"))
            tail = atof(v);
        else if (!strcmp(a, "--te-pt"))
            te_pt = atoi(v);
        else if (!strcmp(a, "--clock-rate"))
            clock_rate = atof(v);
        else if (!strcmp(a, "--max-streams"))
            max_streams = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--batch-ms"))
            batch_ns = (long)(atof(v) * 1e6) % 1000000000;
        else if (!strcmp(a, "--rcvbuf"))
            rcvbuf = atoi(v);
        else
            usage();
        i++;
    }
    if (n_ports == 0 || max_streams == 0)
        usage();

    size_t cap = 1;
    while (cap < 2 * max_streams)
        cap <<= 1;
    table = calloc(cap, sizeof *table);
    if (!table)
        die("calloc");
    table_mask = cap - 1;

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int ep = epoll_create1(0);
    if (ep < 0)
        die("epoll_create1");
    for (int i = 0; i < n_ports; i++) {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0), one = 1;
        if (fd < 0)
            die("socket");
        /* A large queue so a burst while this process waits for a core is kept,
         * not dropped: as root SO_RCVBUFFORCE passes rmem_max (4 MB here, about
         * 16 ms at 250,000 packets/s). Drops that still happen are counted
         * (SO_RXQ_OVFL) so loss caused by the receiver itself shows. */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(ports[i])};
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
            fprintf(stderr, "bind 127.0.0.1:%d: %s\n", ports[i], strerror(errno));
            exit(2);
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            die("epoll_ctl");
        fds[i] = fd;
    }

    struct rusage ru0;
    getrusage(RUSAGE_SELF, &ru0);
    int64_t start = mono_ns();
    int64_t window_start = start + (int64_t)(warmup * 1e9);
    int64_t window_end = window_start + (int64_t)(seconds * 1e9);
    int64_t hard_end = window_end + (int64_t)(tail * 1e9);

    struct epoll_event events[64];
    while (!stop) {
        int64_t now = mono_ns();
        if (!window_open && now >= window_start) {
            /* The window is judged on kernel stamps (CLOCK_REALTIME), so packets
             * that queued up before it opened stay out of it, and those that
             * arrived before it closed but are read later stay in. */
            struct timespec rt;
            clock_gettime(CLOCK_REALTIME, &rt);
            window_start_rt = (int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec;
            window_end_rt = window_start_rt + (window_end - now);
            window_open = 1;
        }
        if (now >= hard_end)
            break;
        int64_t until = (window_open ? hard_end : window_start) - now;
        int timeout_ms = until > 100000000 ? 100 : (int)(until / 1000000) + 1;
        int n = epoll_wait(ep, events, 64, timeout_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int e = 0; e < n; e++)
            drain((int)events[e].data.u32);
        /* Wake at most once per --batch-ms: arrival times come from the kernel,
         * so reading late changes nothing measured, and fewer wake-ups leave the
         * shared cores to the sender being measured. */
        if (n > 0 && batch_ns > 0) {
            struct timespec pause = {.tv_sec = 0, .tv_nsec = batch_ns};
            nanosleep(&pause, NULL);
        }
    }
    /* What the kernel queued before we stopped still counts. */
    for (int i = 0; i < n_ports; i++)
        drain(i);
    int64_t finish = mono_ns();
    struct rusage ru1;
    getrusage(RUSAGE_SELF, &ru1);

    /* Per-stream figures, over streams that carried audio. */
    double *finals = malloc((n_streams + 1) * sizeof *finals);
    size_t n_audio = 0;
    double sum = 0, max = 0;
    uint64_t lost = 0, received = 0, dups = 0, reord = 0;
    for (size_t i = 0; i <= table_mask; i++) {
        struct stream *s = &table[i];
        if (!s->used)
            continue;
        uint64_t exp = expected(s);
        if (exp > s->received)
            lost += exp - s->received;
        received += s->received;
        dups += s->duplicates;
        reord += s->reordered;
        if (!s->have_audio)
            continue;
        double j = s->jitter * 1000.0 / clock_rate;
        finals[n_audio++] = j;
        sum += j;
        if (s->jitter_max * 1000.0 / clock_rate > max)
            max = s->jitter_max * 1000.0 / clock_rate;
    }
    qsort(finals, n_audio, sizeof *finals, cmp_double);
    double p99 = n_audio ? finals[(size_t)ceil(0.99 * (double)n_audio) - 1] : 0;
    uint64_t rxq = 0;
    for (int i = 0; i < n_ports; i++)
        rxq += drops[i];
    int64_t win_end = finish < window_end ? finish : window_end;
    double win_s = window_open && win_end > window_start ? (double)(win_end - window_start) / 1e9 : 0;
    double user = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
                  (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6;
    double sys = (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                 (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    digit_log[digit_log_len] = 0;

    printf("{\"window_s\": %.3f, \"streams\": %zu, \"packets\": %llu, \"packets_per_s\": %.1f, "
           "\"lost\": %llu, \"loss_pct\": %.4f, \"duplicates\": %llu, \"reordered\": %llu, "
           "\"jitter_ms\": {\"mean\": %.4f, \"p99\": %.4f, \"max\": %.4f}, "
           "\"digits\": %llu, \"digit_log\": \"%s\", \"invalid\": %llu, \"rtcp\": %llu, "
           "\"untracked\": %llu, \"rx_queue_drops\": %llu, \"packets_total\": %llu, "
           "\"cpu_s\": {\"user\": %.3f, \"sys\": %.3f}}\n",
           win_s, n_streams, (unsigned long long)packets_window,
           win_s > 0 ? (double)packets_window / win_s : 0.0, (unsigned long long)lost,
           received + lost ? 100.0 * (double)lost / (double)(received + lost) : 0.0,
           (unsigned long long)dups, (unsigned long long)reord, n_audio ? sum / (double)n_audio : 0.0,
           p99, max, (unsigned long long)digits, digit_log, (unsigned long long)invalid,
           (unsigned long long)rtcp, (unsigned long long)untracked, (unsigned long long)rxq,
           (unsigned long long)packets_total, user, sys);
    free(finals);
    return 0;
}

/* Per-packet cost of libsrtp 2 protect and unprotect, for the same packets as
 * `cargo bench --bench srtp`: protect takes a 12-byte header + 160-byte G.711 payload,
 * unprotect a packet of 172 bytes on the wire.
 *
 *   cc -O2 -o libsrtp_bench benches/srtp/libsrtp_bench.c -lsrtp2 && ./libsrtp_bench
 *
 * Prints one line per measurement: OPERATION SUITE MEDIAN_US MIN_US (µs per packet, over
 * rounds of 1,000 consecutive packets of one stream). Each unprotect round gets freshly
 * protected packets (untimed), since libsrtp's replay check refuses a packet twice.
 */
#define _POSIX_C_SOURCE 200809L
#include <srtp2/srtp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 1000
#define ROUNDS 301
#define WIRE 172
#define PLAIN (12 + 160)
#define CAP (PLAIN + SRTP_MAX_TRAILER_LEN + 16)

struct suite {
    const char *name;
    void (*set)(srtp_crypto_policy_t *);
    int key_salt_len, tag_len;
};

static void cm128_80(srtp_crypto_policy_t *p)
{
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(p);
}

static const struct suite SUITES[] = {
    {"AES_CM_128_HMAC_SHA1_80", cm128_80, 30, 10},
    {"AEAD_AES_128_GCM", srtp_crypto_policy_set_aes_gcm_128_16_auth, 28, 16},
};

static unsigned char packets[BATCH][CAP] __attribute__((aligned(8)));
static int lengths[BATCH];

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static srtp_t session(const struct suite *s, srtp_ssrc_type_t type)
{
    unsigned char key[64];
    for (int i = 0; i < s->key_salt_len; i++)
        key[i] = (unsigned char)(i ^ 0x5c);
    srtp_policy_t p;
    memset(&p, 0, sizeof p);
    s->set(&p.rtp);
    s->set(&p.rtcp);
    p.ssrc.type = type;
    p.key = key;
    srtp_t out;
    srtp_err_status_t st = srtp_create(&out, &p);
    if (st) {
        fprintf(stderr, "srtp_create %s: %d\n", s->name, (int)st);
        exit(1);
    }
    return out;
}

/* Plain RTP with sequence number `seq` and `payload` bytes of payload. */
static void fill(unsigned char *p, unsigned seq, int payload)
{
    unsigned ts = seq * 160;
    unsigned char h[12] = {0x80, 0, seq >> 8 & 255, seq & 255, ts >> 24 & 255, ts >> 16 & 255,
                           ts >> 8 & 255, ts & 255, 0x12, 0x34, 0x56, 0x78};
    memcpy(p, h, 12);
    for (int i = 0; i < payload; i++)
        p[12 + i] = (unsigned char)(i | 0x80);
}

static void check(srtp_err_status_t st, const char *what)
{
    if (st) {
        fprintf(stderr, "%s failed: %d\n", what, (int)st);
        exit(1);
    }
}

static void report(const char *op, const char *suite, double *per_packet)
{
    qsort(per_packet, ROUNDS, sizeof *per_packet, by_value);
    printf("%s %s %.3f %.3f\n", op, suite, per_packet[ROUNDS / 2] * 1e6, per_packet[0] * 1e6);
}

int main(void)
{
    static double protect_t[ROUNDS], unprotect_t[ROUNDS];
    check(srtp_init(), "srtp_init");
    printf("# %s\n", srtp_get_version_string());
    for (size_t k = 0; k < sizeof SUITES / sizeof SUITES[0]; k++) {
        const struct suite *s = &SUITES[k];
        srtp_t tx = session(s, ssrc_any_outbound);
        srtp_t rx = session(s, ssrc_any_inbound);
        unsigned seq = 1000;
        /* Protect: 172 bytes of plain RTP each. */
        for (int r = 0; r < ROUNDS; r++) {
            for (int i = 0; i < BATCH; i++)
                fill(packets[i], seq + i, PLAIN - 12);
            double t0 = now();
            for (int i = 0; i < BATCH; i++) {
                lengths[i] = PLAIN;
                check(srtp_protect(tx, packets[i], &lengths[i]), "srtp_protect");
            }
            protect_t[r] = (now() - t0) / BATCH;
            seq += BATCH;
        }
        /* Unprotect: 172 bytes on the wire each, from a sender that starts at ROC 0 as
         * the receiver assumes. */
        srtp_dealloc(tx);
        tx = session(s, ssrc_any_outbound);
        seq = 1000;
        for (int r = 0; r < ROUNDS; r++) {
            for (int i = 0; i < BATCH; i++) {
                fill(packets[i], seq + i, WIRE - 12 - s->tag_len);
                lengths[i] = WIRE - s->tag_len;
                check(srtp_protect(tx, packets[i], &lengths[i]), "srtp_protect");
                if (lengths[i] != WIRE) {
                    fprintf(stderr, "%s: %d bytes on the wire\n", s->name, lengths[i]);
                    return 1;
                }
            }
            double t0 = now();
            for (int i = 0; i < BATCH; i++)
                check(srtp_unprotect(rx, packets[i], &lengths[i]), "srtp_unprotect");
            unprotect_t[r] = (now() - t0) / BATCH;
            seq += BATCH;
        }
        report("protect", s->name, protect_t);
        report("unprotect", s->name, unprotect_t);
        srtp_dealloc(tx);
        srtp_dealloc(rx);
    }
    srtp_shutdown();
    return 0;
}

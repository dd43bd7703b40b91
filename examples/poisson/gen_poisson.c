/* gen_poisson.c: dino-gen-poisson, training data for derivative-informed neural operators from a
 * nonlinear elliptic PDE.
 *
 * The PDE, on the unit square D = (0,1)^2:
 *
 *   -div( exp(u(x)) grad y(x) ) + c y(x)^3 = f(x)   in D,     y = 0 on the boundary of D,
 *
 *   f(x) = 100 exp(-|x - (0.35, 0.6)|^2 / (2 * 0.2^2))          (a smooth off-centre bump),
 *   u(x) = sum_{k<K} m_k sqrt(lambda_k) phi_k(x),   m_k ~ N(0,1) i.i.d.,
 *   phi_k(x) = c_a c_b cos(a pi x1) cos(b pi x2)   (c_0 = 1, c_a = sqrt 2 otherwise; orthonormal
 *              in L2(D)), modes (a,b) ordered by decreasing lambda, ties by a,
 *   lambda_k = sigma^2 (1 + ell^2 pi^2 (a^2 + b^2))^(-s),   sigma = 0.25, ell = 0.15, s = 2,
 *   c = 1 unless --reaction says otherwise.
 *
 * Observables: q_j = y(s_j), s_j = ((jx+1)/(S+1), (jy+1)/(S+1)), j = jy*S + jx, interpolated
 * bilinearly from the grid. The Jacobian J = dq/dm comes from one adjoint solve per observable.
 * Discretisation, Newton and the adjoint: poisson.c. Files and options: README.md.
 *
 * Output (in --out DIR): m_data.npy [N,K], q_data.npy [N,S*S], J_data.npy [N,S*S,K] (float64,
 * C order, J[i][j][k] = dq_j/dm_k of row i), and info.txt.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gen.h"
#include "npy.h"
#include "poisson.h"
#include "rng.h"

void gen_defaults(gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->out = "poisson_data";
    o->rows = 2000;
    o->kl = 64;
    o->sensors = 4;
    o->grid = 31;
    o->seed = 1;
    o->reaction = 1.0;
}

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: " GEN_NAME " [--out DIR] [--n ROWS] [--kl K] [--sensors S] [--grid G]\n"
            "                        [--seed SEED] [--reaction C] [-q]\n"
            "       " GEN_NAME " --selftest [-q]\n"
            "\n"
            "Samples m ~ N(0, I_K), solves -div(exp(u_m) grad y) + C y^3 = f on the unit square\n"
            "(y = 0 on the boundary; u_m a K-term Karhunen-Loeve expansion) on a GxG interior grid,\n"
            "and writes m, q = y at SxS sensors and J = dq/dm into DIR:\n"
            "  m_data.npy [ROWS,K]  q_data.npy [ROWS,S*S]  J_data.npy [ROWS,S*S,K]  info.txt\n"
            "\n"
            "  --out DIR      output directory, created if missing (default poisson_data)\n"
            "  --n ROWS       number of samples, 1..%ld (default 2000)\n"
            "  --kl K         KL terms = dim m, 1..min(%d, (G+2)^2) (default 64)\n"
            "  --sensors S    S x S sensor grid, dim q = S*S, 1..min(%d, G) (default 4)\n"
            "  --grid G       interior grid points per side, %d..%d (default 31)\n"
            "  --seed SEED    PRNG seed, 0..2^64-1 (default 1)\n"
            "  --reaction C   reaction coefficient, 0..%g (default 1)\n"
            "  -q, --quiet    no progress on stderr\n"
            "  --selftest     run the built-in tests and exit\n"
            "  -h, --help     this text\n",
            GEN_MAX_ROWS, GEN_MAX_KL, GEN_MAX_SENSORS, GEN_MIN_GRID, GEN_MAX_GRID, GEN_MAX_REACTION);
}

static int parse_long(const char *s, long lo, long hi, long *v) {
    if (!s || !*s) return -1;
    for (const char *p = s; *p; p++)
        if ((*p < '0' || *p > '9') && !(p == s && (*p == '-' || *p == '+'))) return -1;
    errno = 0;
    char *end;
    const long x = strtol(s, &end, 10);
    if (errno || *end || x < lo || x > hi) return -1;
    *v = x;
    return 0;
}

static int parse_u64(const char *s, uint64_t *v) {
    if (!s || !*s) return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return -1;
    errno = 0;
    char *end;
    const unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *v = (uint64_t)x;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *v) {
    if (!s || !*s) return -1;
    errno = 0;
    char *end;
    const double x = strtod(s, &end);
    if (errno || *end || !isfinite(x) || x < lo || x > hi) return -1;
    *v = x;
    return 0;
}

int gen_parse(int argc, char **argv, gen_opts *o, FILE *out, FILE *err) {
    gen_defaults(o);
    long v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o->quiet = 1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(out);
            return 2;
        }
        if (!strcmp(a, "--selftest")) {
            o->selftest = 1;
            continue;
        }
        /* --opt VALUE or --opt=VALUE */
        static const char *const valued[] = {"--out", "--n", "--kl", "--sensors", "--grid", "--seed", "--reaction"};
        int which = -1;
        const char *val = NULL;
        for (int t = 0; t < (int)(sizeof valued / sizeof *valued); t++) {
            const size_t len = strlen(valued[t]);
            if (!strncmp(a, valued[t], len) && (a[len] == 0 || a[len] == '=')) {
                which = t;
                if (a[len] == '=') {
                    val = a + len + 1;
                } else if (i + 1 < argc) {
                    val = argv[++i];
                } else {
                    fprintf(err, GEN_NAME ": %s needs a value\n", valued[t]);
                    goto bad;
                }
                break;
            }
        }
        if (which < 0) {
            fprintf(err, GEN_NAME ": unknown option '%s'\n", a);
            goto bad;
        }
        switch (which) {
        case 0:
            if (!*val) {
                fprintf(err, GEN_NAME ": --out: empty directory name\n");
                goto bad;
            }
            o->out = val;
            break;
        case 1:
            if (parse_long(val, 1, GEN_MAX_ROWS, &v)) {
                fprintf(err, GEN_NAME ": --n: expected an integer in [1, %ld], got '%s'\n", GEN_MAX_ROWS, val);
                goto bad;
            }
            o->rows = v;
            break;
        case 2:
            if (parse_long(val, 1, GEN_MAX_KL, &v)) {
                fprintf(err, GEN_NAME ": --kl: expected an integer in [1, %d], got '%s'\n", GEN_MAX_KL, val);
                goto bad;
            }
            o->kl = (int)v;
            break;
        case 3:
            if (parse_long(val, 1, GEN_MAX_SENSORS, &v)) {
                fprintf(err, GEN_NAME ": --sensors: expected an integer in [1, %d], got '%s'\n", GEN_MAX_SENSORS, val);
                goto bad;
            }
            o->sensors = (int)v;
            break;
        case 4:
            if (parse_long(val, GEN_MIN_GRID, GEN_MAX_GRID, &v)) {
                fprintf(err, GEN_NAME ": --grid: expected an integer in [%d, %d], got '%s'\n", GEN_MIN_GRID,
                        GEN_MAX_GRID, val);
                goto bad;
            }
            o->grid = (int)v;
            break;
        case 5:
            if (parse_u64(val, &o->seed)) {
                fprintf(err, GEN_NAME ": --seed: expected an integer in [0, 2^64-1], got '%s'\n", val);
                goto bad;
            }
            break;
        case 6:
            if (parse_double(val, 0, GEN_MAX_REACTION, &o->reaction)) {
                fprintf(err, GEN_NAME ": --reaction: expected a number in [0, %g], got '%s'\n", GEN_MAX_REACTION, val);
                goto bad;
            }
            break;
        }
    }
    if (o->kl > poisson_max_kl(o->grid)) {
        fprintf(err, GEN_NAME ": --kl %d: a %dx%d grid resolves at most %d KL modes\n", o->kl, o->grid, o->grid,
                poisson_max_kl(o->grid));
        goto bad;
    }
    if (o->sensors > o->grid) {
        fprintf(err, GEN_NAME ": --sensors %d: at most --grid (%d) sensors per side\n", o->sensors, o->grid);
        goto bad;
    }
    return 0;
bad:
    fprintf(err, "Try '" GEN_NAME " --help'.\n");
    return 1;
}

/* mkdir -p. Returns 0, or -1 with errno set. */
static int mkdir_p(const char *path) {
    char *s = strdup(path);
    if (!s) return -1;
    const size_t len = strlen(s);
    for (size_t i = 1; i <= len; i++) {
        if (s[i] != '/' && s[i] != 0) continue;
        const char keep = s[i];
        s[i] = 0;
        if (mkdir(s, 0777) != 0 && errno != EEXIST) {
            free(s);
            return -1;
        }
        s[i] = keep;
    }
    free(s);
    struct stat sb;
    if (stat(path, &sb) != 0) return -1;
    if (!S_ISDIR(sb.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    double qmin, qmax, qsum, qsq;
    double jmax, jsq, jsq_first, jsq_last;
    double kmin, kmax;
    long iters_sum;
    int iters_max;
    long floor_hits;
} gen_summary;

static int write_info(const gen_opts *o, const poisson *P, const gen_summary *s, char *err, size_t errlen) {
    const size_t dl = strlen(o->out);
    char *tmp = malloc(dl + 64), *fin = malloc(dl + 64);
    if (!tmp || !fin) {
        free(tmp);
        free(fin);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(tmp, dl + 64, "%s/.info.txt.tmp.%ld", o->out, (long)getpid());
    snprintf(fin, dl + 64, "%s/info.txt", o->out);
    FILE *fp = fopen(tmp, "w");
    int bad = !fp;
    if (fp) {
        const double N = (double)o->rows, nq = P->nq, K = P->K;
        const double qmean = s->qsum / (N * nq);
        fprintf(fp,
                "# " GEN_NAME ": -div(exp(u) grad y) + c y^3 = f on (0,1)^2, y = 0 on the boundary\n"
                "# u = sum_k m_k sqrt(lambda_k) phi_k, m ~ N(0, I); q = y at S x S sensors; "
                "J = dq/dm\n"
                "rows = %ld\ndim_m = %d\ndim_q = %d\nsensors = %d\ngrid = %d\nh = %.17g\n"
                "seed = %" PRIu64 "\nreaction = %.17g\n"
                "kl_sigma = %.17g\nkl_ell = %.17g\nkl_s = %.17g\n"
                "source = %g * exp(-|x - (%g, %g)|^2 / (2 * %g^2))\n"
                "face_average = arithmetic\nnewton_rtol = %g\n"
                "file m_data.npy = float64 [%ld, %d]\n"
                "file q_data.npy = float64 [%ld, %d]\n"
                "file J_data.npy = float64 [%ld, %d, %d]  # J[i][j][k] = dq_j/dm_k\n"
                "q_min = %.6g\nq_max = %.6g\nq_mean = %.6g\nq_std = %.6g\n"
                "J_absmax = %.6g\nJ_rms = %.6g\nJ_rms_mode_first = %.6g\nJ_rms_mode_last = %.6g\n"
                "kappa_min = %.6g\nkappa_max = %.6g\n"
                "newton_iters_mean = %.3f\nnewton_iters_max = %d\nnewton_floor_hits = %ld\n",
                o->rows, P->K, P->nq, P->S, P->n, P->h, o->seed, P->c, KL_SIGMA, KL_ELL, KL_S, SRC_AMP, SRC_X1, SRC_X2,
                SRC_WIDTH, NEWTON_RTOL, o->rows, P->K, o->rows, P->nq, o->rows, P->nq, P->K, s->qmin, s->qmax, qmean,
                sqrt(fmax(0, s->qsq / (N * nq) - qmean * qmean)), s->jmax, sqrt(s->jsq / (N * nq * K)),
                sqrt(s->jsq_first / (N * nq)), sqrt(s->jsq_last / (N * nq)), s->kmin, s->kmax, (double)s->iters_sum / N,
                s->iters_max, s->floor_hits);
        bad = fflush(fp) != 0 || ferror(fp) || fsync(fileno(fp)) != 0;
        bad |= fclose(fp) != 0;
        if (!bad) bad = rename(tmp, fin) != 0;
        if (bad) unlink(tmp);
    }
    if (bad) snprintf(err, errlen, "cannot write '%s': %s", fin, strerror(errno));
    free(tmp);
    free(fin);
    return bad ? -1 : 0;
}

int gen_run(const gen_opts *o, FILE *err) {
    static const char *const names[3] = {"m_data.npy", "q_data.npy", "J_data.npy"};
    char msg[1024];
    poisson P;
    npy_writer w[3];
    memset(w, 0, sizeof w);
    double *m = NULL, *q = NULL, *J = NULL;
    int rc = 1;
    if (poisson_init(&P, o->grid, o->kl, o->sensors, o->reaction) != 0) {
        fprintf(err, GEN_NAME ": cannot set up the problem (bad sizes or out of memory)\n");
        return 1;
    }
    const int K = P.K, nq = P.nq;
    m = malloc(sizeof(double) * K);
    q = malloc(sizeof(double) * nq);
    J = malloc(sizeof(double) * nq * K);
    if (!m || !q || !J) {
        fprintf(err, GEN_NAME ": out of memory\n");
        goto done;
    }
    if (mkdir_p(o->out) != 0) {
        fprintf(err, GEN_NAME ": cannot create output directory '%s': %s\n", o->out, strerror(errno));
        goto done;
    }
    const uint64_t N = (uint64_t)o->rows;
    const uint64_t shapes[3][3] = {{N, (uint64_t)K, 0}, {N, (uint64_t)nq, 0}, {N, (uint64_t)nq, (uint64_t)K}};
    for (int f = 0; f < 3; f++)
        if (npy_open(&w[f], o->out, names[f], f == 2 ? 3 : 2, shapes[f], msg, sizeof msg) != 0) {
            fprintf(err, GEN_NAME ": %s\n", msg);
            goto done;
        }

    gen_summary s = {INFINITY, -INFINITY, 0, 0, 0, 0, 0, 0, INFINITY, -INFINITY, 0, 0, 0};
    rng g;
    rng_seed(&g, o->seed);
    const double t0 = now_s();
    const long every = o->rows >= 20 ? o->rows / 20 : 1;
    for (long i = 0; i < o->rows; i++) {
        for (int k = 0; k < K; k++) m[k] = rng_normal(&g);
        poisson_stats st;
        if (poisson_solve(&P, m, q, &st) != 0) {
            fprintf(err, GEN_NAME ": row %ld: Newton did not converge (|R| = %.3g after %d steps)\n", i, st.res,
                    st.iters);
            goto done;
        }
        poisson_jacobian(&P, J);
        if (npy_write(&w[0], m, K) || npy_write(&w[1], q, nq) || npy_write(&w[2], J, (size_t)nq * K)) {
            fprintf(err, GEN_NAME ": write error in '%s': %s\n", o->out, strerror(errno));
            goto done;
        }
        for (int j = 0; j < nq; j++) {
            s.qmin = fmin(s.qmin, q[j]);
            s.qmax = fmax(s.qmax, q[j]);
            s.qsum += q[j];
            s.qsq += q[j] * q[j];
            for (int k = 0; k < K; k++) {
                const double v = J[(size_t)j * K + k];
                s.jmax = fmax(s.jmax, fabs(v));
                s.jsq += v * v;
            }
            s.jsq_first += J[(size_t)j * K] * J[(size_t)j * K];
            s.jsq_last += J[(size_t)j * K + K - 1] * J[(size_t)j * K + K - 1];
        }
        s.kmin = fmin(s.kmin, st.kap_min);
        s.kmax = fmax(s.kmax, st.kap_max);
        s.iters_sum += st.iters;
        if (st.iters > s.iters_max) s.iters_max = st.iters;
        s.floor_hits += st.floor_hit;
        if (!o->quiet && ((i + 1) % every == 0 || i + 1 == o->rows))
            fprintf(err, GEN_NAME ": %ld/%ld rows (%.1f s)\n", i + 1, o->rows, now_s() - t0);
    }
    for (int f = 0; f < 3; f++)
        if (npy_commit(&w[f], msg, sizeof msg) != 0) {
            fprintf(err, GEN_NAME ": %s\n", msg);
            goto done;
        }
    if (write_info(o, &P, &s, msg, sizeof msg) != 0) {
        fprintf(err, GEN_NAME ": %s\n", msg);
        goto done;
    }
    if (!o->quiet)
        fprintf(err,
                GEN_NAME ": wrote %s/{m,q,J}_data.npy: N=%ld K=%d dim q=%d; q in [%.4g, %.4g], "
                         "max|J| = %.4g, kappa in [%.3g, %.3g], Newton steps <= %d; %.2f s\n",
                o->out, o->rows, K, nq, s.qmin, s.qmax, s.jmax, s.kmin, s.kmax, s.iters_max, now_s() - t0);
    rc = 0;
done:
    for (int f = 0; f < 3; f++) npy_abort(&w[f]);
    free(m);
    free(q);
    free(J);
    poisson_free(&P);
    return rc;
}

int main(int argc, char **argv) {
    gen_opts o;
    const int pr = gen_parse(argc, argv, &o, stdout, stderr);
    if (pr == 2) return 0;
    if (pr != 0) return 1;
    if (o.selftest) return gen_selftest(o.quiet);
    return gen_run(&o, stderr);
}

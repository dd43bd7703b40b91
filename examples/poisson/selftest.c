/* selftest.c: the tests behind `dino-gen-poisson --selftest`.
 *
 *  1. Adjoint Jacobian vs central finite differences of q(m), all (j,k), several random m and
 *     settings: max_{j,k} |J_adj - J_fd| <= 1e-6 max_{j,k} |J_fd|  (FD step 1e-4, second order).
 *  2. Newton converges to ||R|| <= 1e-12 ||f|| (checked by recomputing R) for random and extreme
 *     draws; y > 0 (maximum principle, f > 0); with a constant coefficient the discrete solution
 *     equals the manufactured y* = sin(pi x1) sin(pi x2) to round-off (y* is an exact eigenvector
 *     of the 5-point Laplacian), for c = 0 and c > 0; and the error against the continuous
 *     solution of -lap y = 2 pi^2 sin sin falls by 4 per halving of h (second order).
 *  3. A small run writes the three .npy files with exact headers and shapes, data equal to a
 *     direct recomputation, no temporary files left over, identical bytes for the same seed.
 *  4. Bad arguments are rejected with a message (the exit status 1 of the real process is checked
 *     by check_badargs.cmake).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gen.h"
#include "npy.h"
#include "poisson.h"
#include "rng.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static int fails, quiet;

#define CHECK(cond, ...)                                         \
    do {                                                         \
        if (!(cond)) {                                           \
            fails++;                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                        \
            fputc('\n', stderr);                                 \
        }                                                        \
    } while (0)

static void note(const char *fmt, ...) {
    if (quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* ------------------------------------------------------------------ 1. Jacobian vs FD */

#define FD_STEP 1e-4
#define FD_TOL 1e-6

static void test_jacobian_fd(int n, int K, int S, double c, double mscale, uint64_t seed, int samples) {
    poisson P;
    if (poisson_init(&P, n, K, S, c) != 0) {
        CHECK(0, "poisson_init(%d, %d, %d, %g)", n, K, S, c);
        return;
    }
    const int nq = P.nq;
    double *m = malloc(sizeof(double) * K), *q = malloc(sizeof(double) * nq);
    double *qp = malloc(sizeof(double) * nq), *qm = malloc(sizeof(double) * nq);
    double *J = malloc(sizeof(double) * nq * K), *Jfd = malloc(sizeof(double) * nq * K);
    rng g;
    rng_seed(&g, seed);
    double worst = 0;
    for (int s = 0; s < samples; s++) {
        for (int k = 0; k < K; k++) m[k] = mscale * rng_normal(&g);
        if (poisson_solve(&P, m, q, NULL) != 0) {
            CHECK(0, "solve failed (n=%d c=%g sample %d)", n, c, s);
            continue;
        }
        poisson_jacobian(&P, J);
        int ok = 1;
        for (int k = 0; k < K && ok; k++) {
            const double mk = m[k];
            m[k] = mk + FD_STEP;
            ok &= poisson_solve(&P, m, qp, NULL) == 0;
            m[k] = mk - FD_STEP;
            ok &= poisson_solve(&P, m, qm, NULL) == 0;
            m[k] = mk;
            for (int j = 0; j < nq; j++) Jfd[j * K + k] = (qp[j] - qm[j]) / (2 * FD_STEP);
        }
        CHECK(ok, "FD solves failed (n=%d c=%g sample %d)", n, c, s);
        double dmax = 0, jmax = 0;
        for (int i = 0; i < nq * K; i++) {
            dmax = fmax(dmax, fabs(J[i] - Jfd[i]));
            jmax = fmax(jmax, fabs(Jfd[i]));
        }
        const double rel = dmax / jmax;
        worst = fmax(worst, rel);
        CHECK(jmax > 0 && rel <= FD_TOL, "n=%d K=%d S=%d c=%g sample %d: max|J-Jfd|/max|J| = %.3g", n, K, S, c, s, rel);
    }
    note("  jacobian vs FD: grid %d, K %d, dim q %d, c %g, |m| x%g, %d samples: "
         "max rel err %.2e (tol %.0e)\n",
         n, K, nq, c, mscale, samples, worst, FD_TOL);
    free(m);
    free(q);
    free(qp);
    free(qm);
    free(J);
    free(Jfd);
    poisson_free(&P);
}

/* ------------------------------------------------------------------ 2. Newton, exact cases */

static double interior_norm(const poisson *P, const double *v) {
    double s = 0;
    for (int J = 1; J <= P->n; J++)
        for (int I = 1; I <= P->n; I++) s += v[I + J * P->nn] * v[I + J * P->nn];
    return sqrt(s);
}

static void test_newton_random(int n, int K, double c, double mscale, int samples) {
    poisson P;
    if (poisson_init(&P, n, K, 4, c) != 0) {
        CHECK(0, "poisson_init");
        return;
    }
    double *m = malloc(sizeof(double) * K), *r = malloc(sizeof(double) * P.nn * P.nn);
    rng g;
    rng_seed(&g, 7);
    int itmax = 0, floors = 0;
    double resmax = 0, kmin = INFINITY, kmax = 0;
    for (int s = 0; s < samples; s++) {
        for (int k = 0; k < K; k++) m[k] = mscale * rng_normal(&g);
        poisson_stats st;
        const int rc = poisson_solve(&P, m, NULL, &st);
        CHECK(rc == 0, "Newton failed: grid %d c %g scale %g sample %d (|R| %.3g, %d steps)", n, c, mscale, s, st.res,
              st.iters);
        if (rc) continue;
        poisson_residual(&P, P.y, r);
        const double rel = interior_norm(&P, r) / P.fnorm;
        CHECK(rel <= (st.floor_hit ? NEWTON_FLOOR : NEWTON_RTOL), "|R|/|f| = %.3g", rel);
        resmax = fmax(resmax, rel);
        itmax = st.iters > itmax ? st.iters : itmax;
        floors += st.floor_hit;
        kmin = fmin(kmin, st.kap_min);
        kmax = fmax(kmax, st.kap_max);
        int pos = 1;
        for (int J = 1; J <= n; J++)
            for (int I = 1; I <= n; I++) pos &= P.y[I + J * P.nn] > 0;
        CHECK(pos, "y not positive (maximum principle), sample %d", s);
    }
    note("  newton: grid %d, c %g, |m| x%g, %d samples: <= %d steps, max |R|/|f| %.1e, "
         "%d at the round-off floor, kappa in [%.3g, %.3g]\n",
         n, c, mscale, samples, itmax, resmax, floors, kmin, kmax);
    free(m);
    free(r);
    poisson_free(&P);
}

/* Constant kappa = exp(u0) (KL mode 0 is the constant), f = kappa mu y* + c y*^3 with y* the
 * discrete eigenvector sin(pi x1) sin(pi x2): the discrete solution is y* exactly. */
static void test_manufactured(int n, double u0, double c) {
    poisson P;
    if (poisson_init(&P, n, 1, 3, c) != 0) {
        CHECK(0, "poisson_init");
        return;
    }
    CHECK(P.kl_a[0] == 0 && P.kl_b[0] == 0, "KL mode 0 is not the constant");
    const double m0 = u0 / sqrt(P.lambda[0]), kap = exp(u0), h = P.h;
    const double mu = 8 / (h * h) * pow(sin(M_PI * h / 2), 2);
    double fs = 0;
    for (int J = 0; J < P.nn; J++)
        for (int I = 0; I < P.nn; I++) {
            const double ys = sin(M_PI * I * h) * sin(M_PI * J * h);
            const double v = kap * mu * ys + c * ys * ys * ys;
            P.f[I + J * P.nn] = v;
            if (I >= 1 && I <= n && J >= 1 && J <= n) fs += v * v;
        }
    P.fnorm = sqrt(fs);
    poisson_stats st;
    const int rc = poisson_solve(&P, &m0, NULL, &st);
    CHECK(rc == 0, "manufactured: Newton failed");
    double err = 0, umax = 0;
    for (int J = 0; J < P.nn; J++)
        for (int I = 0; I < P.nn; I++) {
            err = fmax(err, fabs(P.y[I + J * P.nn] - sin(M_PI * I * h) * sin(M_PI * J * h)));
            umax = fmax(umax, fabs(P.u[I + J * P.nn] - u0));
        }
    CHECK(umax <= 1e-14, "coefficient not constant: |u - u0| = %.3g", umax);
    CHECK(rc == 0 && err <= 1e-10, "manufactured (n=%d c=%g): max|y - y*| = %.3g", n, c, err);
    note("  manufactured discrete solution: grid %d, kappa %.3g, c %g: max|y - y*| = %.1e, %d "
         "Newton steps\n",
         n, kap, c, err, st.iters);
    poisson_free(&P);
}

/* -lap y = 2 pi^2 sin(pi x1) sin(pi x2): error vs the continuous solution is O(h^2). */
static double continuum_error(int n) {
    poisson P;
    if (poisson_init(&P, n, 1, 1, 0.0) != 0) return NAN;
    double fs = 0;
    for (int J = 0; J < P.nn; J++)
        for (int I = 0; I < P.nn; I++) {
            const double v = 2 * M_PI * M_PI * sin(M_PI * I * P.h) * sin(M_PI * J * P.h);
            P.f[I + J * P.nn] = v;
            if (I >= 1 && I <= n && J >= 1 && J <= n) fs += v * v;
        }
    P.fnorm = sqrt(fs);
    const double m0 = 0;
    double err = NAN;
    if (poisson_solve(&P, &m0, NULL, NULL) == 0) {
        err = 0;
        for (int J = 0; J < P.nn; J++)
            for (int I = 0; I < P.nn; I++)
                err = fmax(err, fabs(P.y[I + J * P.nn] - sin(M_PI * I * P.h) * sin(M_PI * J * P.h)));
    }
    poisson_free(&P);
    return err;
}

static void test_convergence_order(void) {
    const double e1 = continuum_error(15), e2 = continuum_error(31), e3 = continuum_error(63);
    const double r1 = e1 / e2, r2 = e2 / e3;
    CHECK(r1 > 3.8 && r1 < 4.2 && r2 > 3.8 && r2 < 4.2, "O(h^2): errors %.3g %.3g %.3g", e1, e2, e3);
    note("  second order: max error %.2e %.2e %.2e at grid 15/31/63, ratios %.3f %.3f\n", e1, e2, e3, r1, r2);
}

/* ------------------------------------------------------------------ 3. files */

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    unsigned char *buf = NULL;
    if (fseek(fp, 0, SEEK_END) == 0) {
        const long sz = ftell(fp);
        if (sz >= 0 && fseek(fp, 0, SEEK_SET) == 0 && (buf = malloc((size_t)sz + 1)) &&
            fread(buf, 1, (size_t)sz, fp) != (size_t)sz) {
            free(buf);
            buf = NULL;
        }
        *len = sz >= 0 ? (size_t)sz : 0;
    }
    fclose(fp);
    return buf;
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) remove_tree(path);
        else unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_files(void) {
    const char *tmpdir = getenv("TMPDIR");
    char root[512], out1[600], out2[600], path[700], err[512];
    snprintf(root, sizeof root, "%s/dino-gen-poisson-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(root)) {
        CHECK(0, "mkdtemp(%s) failed", root);
        return;
    }
    snprintf(out1, sizeof out1, "%s/a/b", root); /* nested: exercises mkdir -p */
    snprintf(out2, sizeof out2, "%s/c", root);
    gen_opts o;
    gen_defaults(&o);
    o.rows = 7;
    o.kl = 5;
    o.sensors = 3;
    o.grid = 11;
    o.seed = 42;
    o.quiet = 1;
    o.out = out1;
    CHECK(gen_run(&o, stderr) == 0, "gen_run into %s failed", out1);
    o.out = out2;
    CHECK(gen_run(&o, stderr) == 0, "gen_run into %s failed", out2);
    CHECK(count_entries(out1) == 4, "%s holds %d entries, want 4 (no temporary files)", out1, count_entries(out1));

    static const char *const names[3] = {"m_data.npy", "q_data.npy", "J_data.npy"};
    static const char *const dicts[3] = {"{'descr': '<f8', 'fortran_order': False, 'shape': (7, 5), }",
                                         "{'descr': '<f8', 'fortran_order': False, 'shape': (7, 9), }",
                                         "{'descr': '<f8', 'fortran_order': False, 'shape': (7, 9, 5), }"};
    const uint64_t want[3][3] = {{7, 5, 0}, {7, 9, 0}, {7, 9, 5}};
    double *data[3] = {NULL, NULL, NULL};
    for (int f = 0; f < 3; f++) {
        snprintf(path, sizeof path, "%s/%s", out1, names[f]);
        size_t len = 0, len2 = 0;
        unsigned char *raw = slurp(path, &len);
        CHECK(raw && len >= 64, "cannot read %s", path);
        if (!raw || len < 64) continue;
        /* Raw header bytes, independently of npy_load. */
        const size_t hlen = raw[8] | (size_t)raw[9] << 8, dl = strlen(dicts[f]);
        CHECK(!memcmp(raw, "\x93NUMPY\x01\x00", 8), "%s: bad magic/version", names[f]);
        CHECK((10 + hlen) % 64 == 0, "%s: header size %zu", names[f], 10 + hlen);
        CHECK(hlen > dl && !memcmp(raw + 10, dicts[f], dl), "%s: header dict", names[f]);
        int pad = 1;
        for (size_t i = 10 + dl; i + 1 < 10 + hlen && hlen > dl; i++) pad &= raw[i] == ' ';
        CHECK(pad && raw[10 + hlen - 1] == '\n', "%s: header padding", names[f]);
        const uint64_t count = want[f][0] * want[f][1] * (want[f][2] ? want[f][2] : 1);
        CHECK(len == 10 + hlen + 8 * count, "%s: file size %zu", names[f], len);
        /* Same seed, other directory: same bytes. */
        snprintf(path, sizeof path, "%s/%s", out2, names[f]);
        unsigned char *raw2 = slurp(path, &len2);
        CHECK(raw2 && len2 == len && !memcmp(raw, raw2, len), "%s differs between runs", names[f]);
        free(raw);
        free(raw2);
        /* Through the reader. */
        snprintf(path, sizeof path, "%s/%s", out1, names[f]);
        int nd = 0;
        uint64_t shape[NPY_MAX_DIMS];
        data[f] = npy_load(path, &nd, shape, NULL, err, sizeof err);
        CHECK(data[f], "npy_load: %s", err);
        if (data[f]) {
            CHECK(nd == (f == 2 ? 3 : 2) && shape[0] == want[f][0] && shape[1] == want[f][1] &&
                      (nd == 2 || shape[2] == want[f][2]),
                  "%s: shape", names[f]);
        }
    }
    snprintf(path, sizeof path, "%s/info.txt", out1);
    size_t ilen = 0;
    unsigned char *info = slurp(path, &ilen);
    CHECK(info && ilen > 0, "info.txt missing");
    if (info) {
        info[ilen] = 0;
        CHECK(strstr((char *)info, "rows = 7\n") && strstr((char *)info, "dim_m = 5\n") &&
                  strstr((char *)info, "dim_q = 9\n"),
              "info.txt lacks the sizes");
    }
    free(info);
    /* The data equal a direct recomputation with the same draws. */
    if (data[0] && data[1] && data[2]) {
        poisson P;
        if (poisson_init(&P, 11, 5, 3, o.reaction) == 0) {
            rng g;
            rng_seed(&g, 42);
            double m[5], q[9], J[45], dmax = 0;
            for (int i = 0; i < 7; i++) {
                for (int k = 0; k < 5; k++) m[k] = rng_normal(&g);
                CHECK(poisson_solve(&P, m, q, NULL) == 0, "recompute row %d", i);
                poisson_jacobian(&P, J);
                for (int k = 0; k < 5; k++) dmax = fmax(dmax, fabs(m[k] - data[0][i * 5 + k]));
                for (int j = 0; j < 9; j++) dmax = fmax(dmax, fabs(q[j] - data[1][i * 9 + j]));
                for (int t = 0; t < 45; t++) dmax = fmax(dmax, fabs(J[t] - data[2][i * 45 + t]));
            }
            CHECK(dmax == 0, "file data differ from recomputation by %.3g", dmax);
            poisson_free(&P);
        }
    }
    for (int f = 0; f < 3; f++) free(data[f]);
    note("  files: headers, shapes (7,5) (7,9) (7,9,5), data, determinism checked in %s\n", root);
    remove_tree(root);
}

/* ------------------------------------------------------------------ 4. arguments */

static void test_badargs(void) {
    static const char *const cases[][6] = {
        {"--n", "0"},
        {"--n", "-3"},
        {"--n", "abc"},
        {"--n", "12x"},
        {"--n", ""},
        {"--n"},
        {"--n=0"},
        {"--kl", "0"},
        {"--kl", "100000"},
        {"--sensors", "0"},
        {"--grid", "2"},
        {"--grid", "9999"},
        {"--seed", "-1"},
        {"--seed", "1.5"},
        {"--seed", "99999999999999999999"},
        {"--reaction", "-1"},
        {"--reaction", "nan"},
        {"--reaction", "inf"},
        {"--bogus"},
        {"extra"},
        {"--out", ""},
        {"--grid", "3", "--kl", "26"},
        {"--sensors", "9", "--grid", "5", "--kl", "4"},
    };
    const int ncases = (int)(sizeof cases / sizeof *cases);
    int ok = 0;
    for (int c = 0; c < ncases; c++) {
        char *argv[8] = {(char *)GEN_NAME};
        int argc = 1;
        for (int t = 0; t < 6 && cases[c][t]; t++) argv[argc++] = (char *)cases[c][t];
        FILE *err = tmpfile();
        gen_opts o;
        const int rc = gen_parse(argc, argv, &o, stdout, err ? err : stderr);
        const long len = err ? ftell(err) : 1;
        if (err) fclose(err);
        CHECK(rc == 1 && len > 0, "arguments case %d ('%s ...') accepted (rc %d)", c, argv[1], rc);
        ok += rc == 1 && len > 0;
    }
    /* Good ones. */
    char *good[] = {(char *)GEN_NAME,       "--n=5",      "--kl", "3",  "--sensors", "2", "--grid", "7", "--seed",
                    "12345678901234567890", "--reaction", "0.5",  "-q", "--out",     "x"};
    gen_opts o;
    CHECK(gen_parse((int)(sizeof good / sizeof *good), good, &o, stdout, stderr) == 0 && o.rows == 5 && o.kl == 3 &&
              o.sensors == 2 && o.grid == 7 && o.seed == 12345678901234567890ULL && o.reaction == 0.5 && o.quiet &&
              !strcmp(o.out, "x"),
          "good arguments misparsed");
    /* Unwritable output directory: gen_run fails with a message. */
    gen_defaults(&o);
    o.rows = 1;
    o.grid = 5;
    o.kl = 2;
    o.sensors = 1;
    o.quiet = 1;
    o.out = "/dev/null/dino-gen-poisson";
    FILE *err = tmpfile();
    const int rc = gen_run(&o, err ? err : stderr);
    const long len = err ? ftell(err) : 1;
    if (err) fclose(err);
    CHECK(rc == 1 && len > 0, "unwritable --out accepted");
    note("  arguments: %d/%d bad argument lists rejected with a message, unwritable --out rejected\n", ok, ncases);
}

int gen_selftest(int q) {
    quiet = q;
    note(GEN_NAME " selftest\n");
    /* 1 */
    test_jacobian_fd(31, 64, 4, 1.0, 1.0, 11, 3);
    test_jacobian_fd(15, 20, 3, 0.0, 1.0, 12, 2);
    test_jacobian_fd(15, 20, 5, 50.0, 2.0, 13, 2);
    /* 2 */
    test_newton_random(31, 64, 1.0, 1.0, 40);
    test_newton_random(31, 64, 1000.0, 4.0, 5);
    test_newton_random(63, 64, 0.0, 2.0, 3);
    test_manufactured(31, 0.0, 0.0);
    test_manufactured(31, 0.7, 0.0);
    test_manufactured(31, -0.5, 20.0);
    test_convergence_order();
    /* 3 */
    test_files();
    /* 4 */
    test_badargs();
    if (fails) {
        fprintf(stderr, GEN_NAME " selftest: %d check(s) FAILED\n", fails);
        return 1;
    }
    note(GEN_NAME " selftest: all checks passed\n");
    return 0;
}

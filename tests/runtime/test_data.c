/* test_data.c - ctest "runtime_data": data.c on small .npy and IDX files written here.
 * Happy paths (both Jacobian layouts, float32 <-> float64, IDX images and labels, integer
 * label dtypes, every split kind, the optional default J_data.npy, data_gather), then every
 * error, each checked to name the file and the expected and found values; memory-mapped
 * loading (test_mapped: which files are used in place, the same bytes as the copy that
 * DINO_DATA_MAP=0 forces, the same errors, read-ahead bringing evicted pages back); and, when
 * DINO_SHARED_DIR has them, the reference dino_small folder and MNIST through the real
 * front end and the shared specs (else a SKIP: line). */
#define _DEFAULT_SOURCE /* mincore, madvise (MADV_DONTNEED) */
#include "harness.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <zlib.h>

#include "data.h"
#include "fileio.h"
#include "frontend.h"
#include "npy.h"

/* ------------------------------------------------------------------------ fixtures */

/* A regression model m[3] -> q[2] (or a classifier x[16] -> y[10]) reading the default files
 * from the data folder, split 80 / 20, as default_data would set it up. */
static Model make_model(int classifier) {
    Model m = {.name = "test", .path = "test.dino"};
    m.input = classifier ? "x" : "m";
    m.output = classifier ? "y" : "q";
    m.in_dim = classifier ? 16 : 3;
    m.out_dim = classifier ? 10 : 2;
    m.classifier = classifier;
    DataSpec *ds = &m.data;
    ds->input =
        (DataSource){.kind = SRC_NPY, .file = classifier ? "x_data.npy" : "m_data.npy", .scale = 1, .defaulted = 1};
    ds->output =
        (DataSource){.kind = SRC_NPY, .file = classifier ? "y_data.npy" : "q_data.npy", .scale = 1, .defaulted = 1};
    ds->split = SPLIT_FRACTION;
    ds->train = 0.8;
    ds->test = 0.2;
    return m;
}

static DataSource npy_src(const char *file) { return (DataSource){.kind = SRC_NPY, .file = file, .scale = 1}; }

/* Values that identify their place: x[r][c] = r + c / 10, q[r][o] = -r - o / 10,
 * J[r][o][i] = 100 r + 10 o + i. */
static double xval(int r, int c) { return r + c / 10.0; }
static double qval(int r, int o) { return -r - o / 10.0; }
static double jval(int r, int o, int i) { return 100.0 * r + 10.0 * o + i; }

typedef struct {
    T *t;
    char dir[512]; /* the data folder */
    char p[4][600];
    int next;
} Fx;

static const char *fpath(Fx *f, const char *name) {
    char *p = f->p[f->next++ % 4];
    snprintf(p, sizeof f->p[0], "%s/%s", f->dir, name);
    return p;
}

/* Writes name in the data folder from doubles, stored as dt. */
static void save(Fx *f, const char *name, DType dt, int ndim, const int64_t *shape, const double *v) {
    int64_t n = 1;
    for (int k = 0; k < ndim; k++) n *= shape[k];
    void *buf = malloc((size_t)(n ? n : 1) * 8);
    for (int64_t k = 0; k < n; k++) {
        switch (dt) {
        case DT_F32: ((float *)buf)[k] = (float)v[k]; break;
        case DT_F64: ((double *)buf)[k] = v[k]; break;
        case DT_I32: ((int32_t *)buf)[k] = (int32_t)v[k]; break;
        case DT_I64: ((int64_t *)buf)[k] = (int64_t)v[k]; break;
        case DT_U8: ((uint8_t *)buf)[k] = (uint8_t)v[k]; break;
        }
    }
    char err[512];
    CHECK_OK(f->t, npy_save(fpath(f, name), dt, ndim, shape, buf, err, sizeof err), err);
    free(buf);
}

/* The standard regression files: n rows of m [n, 3], q [n, 2], and J_data.npy [n, 2, 3]
 * (or [n, 3, 2] when in_out), all as dt. */
static void write_regression(Fx *f, int n, DType dt, int with_jac, int in_out) {
    double *x = malloc(sizeof(double) * (size_t)n * 3), *q = malloc(sizeof(double) * (size_t)n * 2);
    double *J = malloc(sizeof(double) * (size_t)n * 6);
    for (int r = 0; r < n; r++) {
        for (int c = 0; c < 3; c++) x[r * 3 + c] = xval(r, c);
        for (int o = 0; o < 2; o++) q[r * 2 + o] = qval(r, o);
        for (int o = 0; o < 2; o++)
            for (int i = 0; i < 3; i++) {
                if (in_out) J[r * 6 + i * 2 + o] = jval(r, o, i);
                else J[r * 6 + o * 3 + i] = jval(r, o, i);
            }
    }
    save(f, "m_data.npy", dt, 2, (int64_t[]){n, 3}, x);
    save(f, "q_data.npy", dt, 2, (int64_t[]){n, 2}, q);
    remove(fpath(f, "J_data.npy"));
    if (with_jac) save(f, "J_data.npy", dt, 3, in_out ? (int64_t[]){n, 3, 2} : (int64_t[]){n, 2, 3}, J);
    free(x);
    free(q);
    free(J);
}

static double get(const Dataset *d, const void *a, int64_t k) {
    return d->f64 ? ((const double *)a)[k] : ((const float *)a)[k];
}

/* v as stored in a file of float32 (file_f32) or float64, then loaded in d's precision. */
static double stored(const Dataset *d, int file_f32, double v) {
    if (file_f32) v = (float)v;
    return d->f64 ? v : (float)v;
}

/* d holds file rows [r0, r0 + d->n) of write_regression's files. */
static int rows_match(const Dataset *d, int r0, int with_jac, int file_f32) {
    for (int r = 0; r < d->n; r++) {
        for (int c = 0; c < 3; c++)
            if (get(d, d->x, r * 3 + c) != stored(d, file_f32, xval(r0 + r, c))) return 0;
        for (int o = 0; o < 2; o++)
            if (get(d, d->y, r * 2 + o) != stored(d, file_f32, qval(r0 + r, o))) return 0;
        if (with_jac != (d->J != NULL)) return 0;
        for (int o = 0; with_jac && o < 2; o++)
            for (int i = 0; i < 3; i++)
                if (get(d, d->J, (r * 2 + o) * 3 + i) != jval(r0 + r, o, i)) return 0;
    }
    return 1;
}

/* Writes an IDX file: magic 0 0 type ndim, big-endian u32 dims, data (already big-endian
 * for multi-byte types; only u8 is used here). gz: through zlib. */
static void write_idx(Fx *f, const char *name, int ndim, const uint32_t *dims, const uint8_t *data, size_t n, int gz) {
    unsigned char head[4 + 4 * 4] = {0, 0, 0x08, (unsigned char)ndim};
    for (int k = 0; k < ndim; k++)
        for (int b = 0; b < 4; b++) head[4 + 4 * k + b] = (unsigned char)(dims[k] >> (24 - 8 * b));
    size_t hl = 4 + 4 * (size_t)ndim;
    if (gz) {
        gzFile z = gzopen(fpath(f, name), "wb");
        CHECK(f->t, z != NULL);
        if (!z) return;
        CHECK(f->t, gzwrite(z, head, (unsigned)hl) == (int)hl);
        CHECK(f->t, gzwrite(z, data, (unsigned)n) == (int)n);
        CHECK(f->t, gzclose(z) == Z_OK);
    } else {
        FILE *fp = fopen(fpath(f, name), "wb");
        CHECK(f->t, fp != NULL);
        if (!fp) return;
        CHECK(f->t, fwrite(head, 1, hl, fp) == hl && fwrite(data, 1, n, fp) == n);
        fclose(fp);
    }
}

/* data_load into *tr, *te with err; the return code. */
static int load(Fx *f, const Model *m, int f64, int need_jac, Dataset *tr, Dataset *te, char *err, size_t errlen) {
    err[0] = 0;
    return data_load(m, f->dir, f64, need_jac, tr, te, err, errlen);
}

/* Expect data_load to fail with a message that starts with the file's path and contains
 * the given pieces; the sets must come back zeroed. */
#define LOAD_ERR(f, m, f64, need_jac, file, ...)                                \
    do {                                                                        \
        Dataset tr_, te_;                                                       \
        char e_[1024];                                                          \
        int rc_ = load((f), (m), (f64), (need_jac), &tr_, &te_, e_, sizeof e_); \
        CHECK_ERR((f)->t, rc_, e_, fpath((f), (file)), __VA_ARGS__);            \
        CHECK((f)->t, tr_.n == 0 && !tr_.x && te_.n == 0 && !te_.x);            \
        if (rc_ == 0) {                                                         \
            data_free(&tr_);                                                    \
            data_free(&te_);                                                    \
        }                                                                       \
    } while (0)

/* data_load_sets into *tr, *va, *te, mapped (map 1) or with DINO_DATA_MAP=0 (every file copied). */
static int load3(Fx *f, const Model *m, int f64, int map, Dataset *tr, Dataset *va, Dataset *te, char *err,
                 size_t errlen) {
    err[0] = 0;
    if (!map) setenv("DINO_DATA_MAP", "0", 1);
    int rc = data_load_sets(m, f->dir, f64, 0, tr, va, te, err, errlen);
    unsetenv("DINO_DATA_MAP");
    return rc;
}

/* ------------------------------------------------------------------------ happy paths */

static void test_regression(Fx *f) {
    T *t = f->t;
    char err[1024];
    Dataset tr, te;
    for (int file_dt = DT_F32; file_dt <= DT_F64; file_dt++) {
        for (int in_out = 0; in_out <= 1; in_out++) {
            write_regression(f, 10, (DType)file_dt, 1, in_out);
            Model m = make_model(0);
            m.data.jac = npy_src("J_data.npy");
            m.data.jac.in_out = in_out;
            for (int f64 = 0; f64 <= 1; f64++) {
                if (!CHECK_OK(t, load(f, &m, f64, 1, &tr, &te, err, sizeof err), err)) continue;
                CHECK(t, tr.n == 8 && te.n == 2 && tr.in == 3 && tr.out == 2 && tr.f64 == f64);
                CHECK(t, !tr.classifier && !tr.label && tr.y && tr.J && te.J);
                /* Values are exact in both precisions except x, q rounded once to float. */
                CHECK(t, rows_match(&tr, 0, 1, file_dt == DT_F32));
                CHECK(t, rows_match(&te, 8, 1, file_dt == DT_F32)); /* test rows come right after the training rows */
                data_free(&tr);
                data_free(&te);
                data_free(&te); /* a second free is harmless */
            }
        }
    }
    /* Without Jacobian data in the spec: J_data.npy is still used when it exists... */
    write_regression(f, 10, DT_F64, 1, 0);
    Model m = make_model(0);
    if (CHECK_OK(t, load(f, &m, 1, 0, &tr, &te, err, sizeof err), err)) {
        CHECK(t, tr.J && te.J && rows_match(&tr, 0, 1, 0) && rows_match(&te, 8, 1, 0));
        data_free(&tr);
        data_free(&te);
    }
    /* ... and skipped when it does not. */
    write_regression(f, 10, DT_F64, 0, 0);
    if (CHECK_OK(t, load(f, &m, 1, 0, &tr, &te, err, sizeof err), err)) {
        CHECK(t, !tr.J && !te.J && rows_match(&tr, 0, 0, 0) && rows_match(&te, 8, 0, 0));
        data_free(&tr);
        data_free(&te);
    }
    /* A dimension-1 output may be a plain [N] vector. */
    Model m1 = make_model(0);
    m1.out_dim = 1;
    double q1[5] = {1, 2, 3, 4, 5};
    save(f, "q1.npy", DT_F64, 1, (int64_t[]){5}, q1);
    save(f, "m1.npy", DT_F64, 2, (int64_t[]){5, 3}, (double[15]){0});
    m1.data.input = npy_src("m1.npy");
    m1.data.output = npy_src("q1.npy");
    if (CHECK_OK(t, load(f, &m1, 0, 0, &tr, &te, err, sizeof err), err)) {
        CHECK(t, tr.n == 4 && te.n == 1 && ((float *)te.y)[0] == 5);
        data_free(&tr);
        data_free(&te);
    }
}

static void test_gather(Fx *f) {
    T *t = f->t;
    char err[1024];
    Dataset tr, te;
    write_regression(f, 10, DT_F64, 1, 0);
    Model m = make_model(0);
    if (!CHECK_OK(t, load(f, &m, 1, 1, &tr, &te, err, sizeof err), err)) return;
    int64_t idx[3] = {5, 0, 7};
    double x[3 * 3], y[3 * 2], J[3 * 6];
    data_gather(&tr, idx, 3, x, y, J, NULL);
    int ok = 1;
    for (int b = 0; b < 3; b++) {
        int r = (int)idx[b];
        for (int c = 0; c < 3; c++) ok &= x[b * 3 + c] == xval(r, c);
        for (int o = 0; o < 2; o++) ok &= y[b * 2 + o] == qval(r, o);
        for (int o = 0; o < 2; o++)
            for (int i = 0; i < 3; i++) ok &= J[(b * 2 + o) * 3 + i] == jval(r, o, i);
    }
    CHECK(t, ok);
    double x2[3] = {0};
    int32_t lab[1] = {-7};
    data_gather(&te, (int64_t[]){1}, 1, x2, NULL, NULL, lab); /* NULL outputs are skipped */
    CHECK(t, x2[0] == xval(9, 0) && x2[2] == xval(9, 2) && lab[0] == -7);
    data_free(&tr);
    data_free(&te);
}

static void test_classifier(Fx *f) {
    T *t = f->t;
    char err[1024];
    Dataset tr, te;
    /* 10 images of 4x4 pixels, pixel = 16 r + k; labels r. Gzip and plain. */
    enum { N = 10, PIX = 16 };
    uint8_t img[N * PIX], lab[N];
    for (int r = 0; r < N; r++) {
        lab[r] = (uint8_t)r;
        for (int k = 0; k < PIX; k++) img[r * PIX + k] = (uint8_t)(16 * r + k);
    }
    for (int gz = 0; gz <= 1; gz++) {
        write_idx(f, gz ? "img.gz" : "img.idx", 3, (uint32_t[]){N, 4, 4}, img, sizeof img, gz);
        write_idx(f, gz ? "lab.gz" : "lab.idx", 1, (uint32_t[]){N}, lab, sizeof lab, gz);
        Model m = make_model(1);
        m.data.input = (DataSource){.kind = SRC_IDX, .file = gz ? "img.gz" : "img.idx", .scale = 1.0 / 255};
        m.data.output = (DataSource){.kind = SRC_IDX, .file = gz ? "lab.gz" : "lab.idx", .scale = 1};
        m.data.split = SPLIT_COUNT;
        m.data.train = 6;
        m.data.test = -1; /* the rest */
        for (int f64 = 0; f64 <= 1; f64++) {
            if (!CHECK_OK(t, load(f, &m, f64, 1, &tr, &te, err, sizeof err), err)) continue;
            CHECK(t, tr.n == 6 && te.n == 4 && tr.classifier && !tr.y && !tr.J && tr.label);
            int ok = 1;
            for (int r = 0; r < 6; r++) {
                ok &= tr.label[r] == r;
                for (int k = 0; k < PIX; k++) {
                    double want = (16 * r + k) * (1.0 / 255);
                    ok &= f64 ? get(&tr, tr.x, r * PIX + k) == want : get(&tr, tr.x, r * PIX + k) == (float)want;
                }
            }
            CHECK(t, ok && te.label[0] == 6 && te.label[3] == 9);
            CHECK(t, get(&te, te.x, 3 * PIX + 15) == (f64 ? (16 * 9 + 15) / 255.0 : (float)((16 * 9 + 15) / 255.0)));
            int32_t bl[2];
            data_gather(&te, (int64_t[]){2, 0}, 2, NULL, NULL, NULL, bl);
            CHECK(t, bl[0] == 8 && bl[1] == 6);
            data_free(&tr);
            data_free(&te);
        }
    }
    /* npy labels: int64 [N, 1], int32 [N], uint8 [N]; flat npy inputs [N, 16]. */
    double xs[N * PIX], ls[N];
    for (int k = 0; k < N * PIX; k++) xs[k] = k;
    for (int r = 0; r < N; r++) ls[r] = (r * 3) % 10;
    save(f, "x_data.npy", DT_F32, 2, (int64_t[]){N, PIX}, xs);
    const DType ldt[3] = {DT_I64, DT_I32, DT_U8};
    for (int k = 0; k < 3; k++) {
        save(f, "y_data.npy", ldt[k], k == 0 ? 2 : 1, k == 0 ? (int64_t[]){N, 1} : (int64_t[]){N}, ls);
        Model m = make_model(1);
        if (!CHECK_OK(t, load(f, &m, 0, 0, &tr, &te, err, sizeof err), err)) continue;
        CHECK(t, tr.n == 8 && te.n == 2 && tr.label[7] == 1 && te.label[0] == 4 && te.label[1] == 7);
        CHECK(t, ((float *)te.x)[PIX + 15] == 9 * PIX + 15);
        data_free(&tr);
        data_free(&te);
    }
}

static void test_splits(Fx *f) {
    T *t = f->t;
    char err[1024];
    Dataset tr, te;
    write_regression(f, 11, DT_F64, 0, 0);
    struct {
        SplitKind kind;
        double train, test;
        int64_t ntr, nte;
    } cases[] = {
        {SPLIT_FRACTION, 0.8, 0.2, 9, 2},                              /* round(8.8) = 9, round(2.2) = 2 */
        {SPLIT_FRACTION, 0.5, 0.5, 6, 5},                              /* both round up: the test part gives one back */
        {SPLIT_FRACTION, 0.5, 0.25, 6, 3},                             /* rows left over are unused */
        {SPLIT_FRACTION, 1.0, 0.0, 11, 0},                             /* no test set, as asked */
        {SPLIT_COUNT, 4, 3, 4, 3},         {SPLIT_COUNT, 4, -1, 4, 7}, /* the rest */
        {SPLIT_COUNT, 11, 0, 11, 0},       {SPLIT_COUNT, 1, 10, 1, 10},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        Model m = make_model(0);
        m.data.split = cases[c].kind;
        m.data.train = cases[c].train;
        m.data.test = cases[c].test;
        if (!CHECK_OK(t, load(f, &m, 1, 0, &tr, &te, err, sizeof err), err)) continue;
        if (!CHECK(t, tr.n == cases[c].ntr && te.n == cases[c].nte))
            printf("  case %zu: train %lld, test %lld\n", c, (long long)tr.n, (long long)te.n);
        CHECK(t, rows_match(&tr, 0, 0, 0) && rows_match(&te, (int)tr.n, 0, 0));
        CHECK(t, te.n > 0 || (!te.x && !te.y && !te.J));
        data_free(&tr);
        data_free(&te);
    }
    /* Separate test files, with a Jacobian only in the test set. */
    write_regression(f, 5, DT_F32, 0, 0);
    double tx[4 * 3], tq[4 * 2], tj[4 * 6];
    for (int k = 0; k < 12; k++) tx[k] = 1000 + k;
    for (int k = 0; k < 8; k++) tq[k] = 2000 + k;
    for (int k = 0; k < 24; k++) tj[k] = 3000 + k;
    save(f, "tx.npy", DT_F64, 2, (int64_t[]){4, 3}, tx);
    save(f, "tq.npy", DT_F32, 2, (int64_t[]){4, 2}, tq);
    save(f, "tj.npy", DT_F64, 3, (int64_t[]){4, 3, 2}, tj);
    Model m = make_model(0);
    m.data.split = SPLIT_TEST_FILES;
    m.data.test_input = npy_src("tx.npy");
    m.data.test_output = npy_src("tq.npy");
    m.data.test_jac = npy_src("tj.npy");
    m.data.test_jac.in_out = 1;
    if (CHECK_OK(t, load(f, &m, 1, 0, &tr, &te, err, sizeof err), err)) {
        CHECK(t, tr.n == 5 && te.n == 4 && rows_match(&tr, 0, 0, 1) && !tr.J && te.J);
        CHECK(t, ((double *)te.x)[11] == 1011 && ((double *)te.y)[7] == 2007);
        /* in_out [4, 3, 2] -> out_in [4, 2, 3]: J[r][o][i] = file[r][i][o] */
        CHECK(t, ((double *)te.J)[1 * 6 + 0 * 3 + 2] == 3000 + 1 * 6 + 2 * 2 + 0);
        CHECK(t, ((double *)te.J)[3 * 6 + 1 * 3 + 1] == 3000 + 3 * 6 + 1 * 2 + 1);
        data_free(&tr);
        data_free(&te);
    }
}

/* The valid part: contiguous train, valid, test rows; rounding; valid files. */
static void test_valid(Fx *f) {
    T *t = f->t;
    char err[1024];
    Dataset tr, va, te;
    write_regression(f, 11, DT_F64, 1, 0);
    struct {
        SplitKind kind;
        double train, valid, test;
        int64_t ntr, nva, nte;
    } cases[] = {
        {SPLIT_COUNT, 6, 2, 3, 6, 2, 3},
        {SPLIT_COUNT, 5, 2, -1, 5, 2, 4}, /* test: the rest */
        {SPLIT_COUNT, 5, 3, 0, 5, 3, 0},
        {SPLIT_FRACTION, 0.7, 0.1, 0.2, 8, 1, 2},   /* round(7.7) = 8, round(1.1) = 1, round(2.2) = 2 */
        {SPLIT_FRACTION, 0.5, 0.25, 0.25, 6, 3, 2}, /* 6 + 3 + 3 > 11: the test part gives one back */
        {SPLIT_FRACTION, 0.5, 0.5, 0, 6, 5, 0},     /* ... then the valid part */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        Model m = make_model(0);
        m.data.split = cases[c].kind;
        m.data.train = cases[c].train;
        m.data.valid = cases[c].valid;
        m.data.test = cases[c].test;
        err[0] = 0;
        if (!CHECK_OK(t, data_load_sets(&m, f->dir, 1, 0, &tr, &va, &te, err, sizeof err), err)) continue;
        if (!CHECK(t, tr.n == cases[c].ntr && va.n == cases[c].nva && te.n == cases[c].nte))
            printf("  valid case %zu: train %lld, valid %lld, test %lld\n", c, (long long)tr.n, (long long)va.n,
                   (long long)te.n);
        CHECK(t,
              rows_match(&tr, 0, 1, 0) && rows_match(&va, (int)tr.n, 1, 0) &&
                  rows_match(&te, (int)(tr.n + va.n), 1, 0));
        CHECK(t, va.J != NULL);
        data_free(&tr), data_free(&va), data_free(&te);
    }
    /* data_load leaves the valid rows out: the test rows stay after them */
    Model m = make_model(0);
    m.data.split = SPLIT_COUNT;
    m.data.train = 6, m.data.valid = 2, m.data.test = 3;
    if (CHECK_OK(t, load(f, &m, 1, 0, &tr, &te, err, sizeof err), err)) {
        CHECK(t, tr.n == 6 && te.n == 3 && rows_match(&te, 8, 1, 0));
        data_free(&tr), data_free(&te);
    }
    /* Splits that don't fit name every part. */
    m.data.train = 6, m.data.valid = 4, m.data.test = 3;
    err[0] = 0;
    CHECK_ERR(t, data_load_sets(&m, f->dir, 1, 0, &tr, &va, &te, err, sizeof err), err, fpath(f, "m_data.npy"),
              "split train 6, valid 4, test 3 needs 13 rows, but the file has 11");
    m.data.test = -1, m.data.valid = 5;
    CHECK_ERR(t, data_load_sets(&m, f->dir, 1, 0, &tr, &va, &te, err, sizeof err), err, fpath(f, "m_data.npy"),
              "split train 6, valid 5 leaves no test rows");
    m.data.split = SPLIT_FRACTION;
    m.data.train = 0.8, m.data.valid = 0.01, m.data.test = 0.19;
    CHECK_ERR(t, data_load_sets(&m, f->dir, 1, 0, &tr, &va, &te, err, sizeof err), err, fpath(f, "m_data.npy"),
              "split train 0.8, valid 0.01, test 0.19 of 11 rows leaves the validation set empty");
    CHECK(t, tr.n == 0 && va.n == 0 && te.n == 0 && !va.x);
    /* Valid files beside a split of the main files; their Jacobian only when named. */
    double vx[3 * 3], vq[3 * 2];
    for (int k = 0; k < 9; k++) vx[k] = 500 + k;
    for (int k = 0; k < 6; k++) vq[k] = 600 + k;
    save(f, "vx.npy", DT_F64, 2, (int64_t[]){3, 3}, vx);
    save(f, "vq.npy", DT_F32, 2, (int64_t[]){3, 2}, vq);
    Model mv = make_model(0);
    mv.data.valid_input = npy_src("vx.npy");
    mv.data.valid_output = npy_src("vq.npy");
    if (CHECK_OK(t, data_load_sets(&mv, f->dir, 1, 0, &tr, &va, &te, err, sizeof err), err)) {
        CHECK(t,
              tr.n == 9 && te.n == 2 && va.n == 3 && !va.J && ((double *)va.x)[8] == 508 && ((double *)va.y)[5] == 605);
        data_free(&tr), data_free(&va), data_free(&te);
    }
    save(f, "vq.npy", DT_F32, 2, (int64_t[]){2, 2}, vq);
    err[0] = 0;
    CHECK_ERR(t, data_load_sets(&mv, f->dir, 1, 0, &tr, &va, &te, err, sizeof err), err, fpath(f, "vq.npy"),
              "row counts differ");
}

/* ------------------------------------------------------------------------ errors */

/* Hand-made .npy: header dict and raw data (for Fortran order). */
static void write_raw_npy(Fx *f, const char *name, const char *dict, const void *data, size_t n) {
    size_t dl = strlen(dict), hlen = dl + 1;
    while ((10 + hlen) % 64) hlen++;
    unsigned char *buf = malloc(10 + hlen + n);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(hlen & 0xff);
    buf[9] = (unsigned char)(hlen >> 8);
    memcpy(buf + 10, dict, dl);
    memset(buf + 10 + dl, ' ', hlen - dl - 1);
    buf[10 + hlen - 1] = '\n';
    memcpy(buf + 10 + hlen, data, n);
    FILE *fp = fopen(fpath(f, name), "wb");
    if (fp) {
        fwrite(buf, 1, 10 + hlen + n, fp);
        fclose(fp);
    }
    free(buf);
}

static void test_errors(Fx *f) {
    Model m = make_model(0);

    /* Wrong shapes. */
    write_regression(f, 10, DT_F64, 0, 0);
    save(f, "q_data.npy", DT_F64, 2, (int64_t[]){10, 3}, (double[30]){0});
    LOAD_ERR(f, &m, 1, 0, "q_data.npy", "expected shape [N, 2] (the output q has dimension 2), found [10, 3]");
    save(f, "q_data.npy", DT_F64, 3, (int64_t[]){10, 2, 1}, (double[20]){0});
    LOAD_ERR(f, &m, 1, 0, "q_data.npy", "expected shape [N, 2]", "found [10, 2, 1]");
    write_regression(f, 10, DT_F64, 0, 0);
    save(f, "m_data.npy", DT_F64, 1, (int64_t[]){10}, (double[10]){0});
    LOAD_ERR(f, &m, 1, 0, "m_data.npy", "expected shape [N, 3] (the input m has dimension 3), found [10]");

    /* Wrong dtype. */
    write_regression(f, 10, DT_F64, 0, 0);
    save(f, "m_data.npy", DT_I32, 2, (int64_t[]){10, 3}, (double[30]){0});
    LOAD_ERR(f, &m, 1, 0, "m_data.npy", "dtype int32 where float32 or float64 is expected");
    save(f, "m_data.npy", DT_U8, 2, (int64_t[]){10, 3}, (double[30]){0});
    LOAD_ERR(f, &m, 1, 0, "m_data.npy", "dtype uint8 where float32 or float64 is expected");

    /* Fortran order and truncation (npy_load's messages). */
    write_regression(f, 10, DT_F64, 0, 0);
    double raw[30] = {0};
    write_raw_npy(f, "q_data.npy", "{'descr': '<f8', 'fortran_order': True, 'shape': (10, 2), }", raw,
                  20 * sizeof(double));
    LOAD_ERR(f, &m, 1, 0, "q_data.npy", "Fortran");
    write_raw_npy(f, "q_data.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (10, 2), }", raw,
                  19 * sizeof(double));
    LOAD_ERR(f, &m, 1, 0, "q_data.npy", "truncated", "160", "152");

    /* NaN, Inf, -Inf, and a float64 too large for float32 (naming row and column). */
    double bad[30];
    for (int k = 0; k < 30; k++) bad[k] = k;
    write_regression(f, 10, DT_F64, 0, 0);
    bad[7 * 3 + 2] = NAN;
    save(f, "m_data.npy", DT_F64, 2, (int64_t[]){10, 3}, bad);
    LOAD_ERR(f, &m, 1, 0, "m_data.npy", "contains NaN at row 7, column 2");
    bad[7 * 3 + 2] = 0;
    bad[2 * 3 + 0] = INFINITY;
    save(f, "m_data.npy", DT_F32, 2, (int64_t[]){10, 3}, bad);
    LOAD_ERR(f, &m, 0, 0, "m_data.npy", "contains Inf at row 2, column 0");
    bad[2 * 3 + 0] = -INFINITY;
    save(f, "m_data.npy", DT_F64, 2, (int64_t[]){10, 3}, bad);
    LOAD_ERR(f, &m, 1, 0, "m_data.npy", "contains -Inf at row 2, column 0");
    bad[2 * 3 + 0] = 1e300;
    save(f, "m_data.npy", DT_F64, 2, (int64_t[]){10, 3}, bad);
    LOAD_ERR(f, &m, 0, 0, "m_data.npy", "value 1e+300 at row 2, column 0 does not fit in float32");
    /* NaN in a test row is found too (and named by its row in the file). */
    bad[2 * 3 + 0] = 0;
    bad[9 * 3 + 1] = NAN;
    save(f, "m_data.npy", DT_F64, 2, (int64_t[]){10, 3}, bad);
    LOAD_ERR(f, &m, 1, 0, "m_data.npy", "contains NaN at row 9, column 1");

    /* Row counts. */
    write_regression(f, 10, DT_F64, 0, 0);
    save(f, "q_data.npy", DT_F64, 2, (int64_t[]){9, 2}, (double[18]){0});
    {
        char want[1200];
        snprintf(want, sizeof want, "row counts differ: %s has 10 rows, %s has 9", fpath(f, "m_data.npy"),
                 fpath(f, "q_data.npy"));
        LOAD_ERR(f, &m, 1, 0, "q_data.npy", want);
    }
    write_regression(f, 10, DT_F64, 0, 0);
    save(f, "J_data.npy", DT_F64, 3, (int64_t[]){8, 2, 3}, (double[48]){0});
    LOAD_ERR(f, &m, 1, 0, "J_data.npy", "row counts differ", "has 10 rows", "has 8");
    save(f, "m_data.npy", DT_F64, 2, (int64_t[]){0, 3}, NULL);
    LOAD_ERR(f, &m, 1, 0, "m_data.npy", "no rows");

    /* Jacobian shapes, with the layout hints. */
    write_regression(f, 10, DT_F64, 1, 1); /* stored in_out, spec says nothing */
    LOAD_ERR(f, &m, 1, 0, "J_data.npy", "expected shape [N, 2, 3] (dq/dm: [N, dim(q), dim(m)]), found [10, 3, 2]",
             "add layout = in_out");
    Model mj = make_model(0);
    mj.data.jac = npy_src("J_data.npy");
    mj.data.jac.in_out = 1;
    write_regression(f, 10, DT_F64, 1, 0);
    LOAD_ERR(f, &mj, 1, 0, "J_data.npy", "expected shape [N, 3, 2]", "layout = in_out", "found [10, 2, 3]",
             "drop layout = in_out");
    save(f, "J_data.npy", DT_I64, 3, (int64_t[]){10, 3, 2}, (double[60]){0});
    LOAD_ERR(f, &mj, 1, 0, "J_data.npy", "dtype int64 where float32 or float64 is expected");
    double jb[60] = {0};
    jb[4 * 6 + 1 * 2 + 1] = NAN; /* row 4, file entry [1, 1] */
    save(f, "J_data.npy", DT_F64, 3, (int64_t[]){10, 3, 2}, jb);
    LOAD_ERR(f, &mj, 1, 0, "J_data.npy", "contains NaN at row 4, entry [1, 1]");

    /* Missing files: named data, defaulted data, a required Jacobian. */
    write_regression(f, 10, DT_F64, 0, 0);
    LOAD_ERR(f, &m, 1, 1, "J_data.npy", "cannot open", "default file for dq/dm");
    LOAD_ERR(f, &mj, 1, 0, "J_data.npy", "cannot open");
    Model mn = make_model(0);
    mn.data.output = npy_src("nope.npy");
    LOAD_ERR(f, &mn, 1, 0, "nope.npy", "cannot open");
    remove(fpath(f, "m_data.npy"));
    LOAD_ERR(f, &m, 1, 0, "m_data.npy", "cannot open", "default file for the input m");

    /* Splits that don't fit. */
    write_regression(f, 10, DT_F64, 0, 0);
    Model ms = make_model(0);
    ms.data.split = SPLIT_COUNT;
    ms.data.train = 8;
    ms.data.test = 5;
    LOAD_ERR(f, &ms, 1, 0, "m_data.npy", "split train 8, test 5 needs 13 rows, but the file has 10");
    ms.data.train = 11;
    ms.data.test = 0;
    LOAD_ERR(f, &ms, 1, 0, "m_data.npy", "split train 11, test 0 needs 11 rows, but the file has 10");
    ms.data.train = 10;
    ms.data.test = -1;
    LOAD_ERR(f, &ms, 1, 0, "m_data.npy", "split train 10 leaves no test rows", "has 10 rows");
    ms.data.split = SPLIT_FRACTION;
    ms.data.train = 0.96;
    ms.data.test = 0.04;
    LOAD_ERR(f, &ms, 1, 0, "m_data.npy", "split train 0.96, test 0.04 of 10 rows leaves the test set empty");
    ms.data.train = 0.04;
    ms.data.test = 0.96;
    LOAD_ERR(f, &ms, 1, 0, "m_data.npy", "leaves the training set empty");

    /* Separate test files: same checks. */
    Model mt = make_model(0);
    mt.data.split = SPLIT_TEST_FILES;
    mt.data.test_input = npy_src("tx.npy");
    mt.data.test_output = npy_src("tq.npy");
    save(f, "tx.npy", DT_F64, 2, (int64_t[]){4, 4}, (double[16]){0});
    save(f, "tq.npy", DT_F64, 2, (int64_t[]){4, 2}, (double[8]){0});
    LOAD_ERR(f, &mt, 1, 0, "tx.npy", "expected shape [N, 3] (the input m has dimension 3), found [4, 4]");
    save(f, "tx.npy", DT_F64, 2, (int64_t[]){5, 3}, (double[15]){0});
    LOAD_ERR(f, &mt, 1, 0, "tq.npy", "row counts differ", "has 5 rows", "has 4");
}

static void test_label_errors(Fx *f) {
    Model m = make_model(1);
    double xs[10 * 16] = {0}, ls[10] = {1, 2, 3, 10, 0, 0, 0, 0, 0, 0};
    save(f, "x_data.npy", DT_F64, 2, (int64_t[]){10, 16}, xs);
    save(f, "y_data.npy", DT_I64, 1, (int64_t[]){10}, ls);
    LOAD_ERR(f, &m, 0, 0, "y_data.npy", "label 10 at row 3 is outside [0, 10) (the output y has 10 classes)");
    ls[3] = 0;
    ls[9] = -1; /* in the test part */
    save(f, "y_data.npy", DT_I32, 2, (int64_t[]){10, 1}, ls);
    LOAD_ERR(f, &m, 0, 0, "y_data.npy", "label -1 at row 9 is outside [0, 10)");
    save(f, "y_data.npy", DT_F32, 1, (int64_t[]){10}, ls);
    LOAD_ERR(f, &m, 0, 0, "y_data.npy", "dtype float32 where an integer dtype (uint8, int32 or int64) is expected");
    save(f, "y_data.npy", DT_I32, 2, (int64_t[]){10, 2}, (double[20]){0});
    LOAD_ERR(f, &m, 0, 0, "y_data.npy", "expected shape [N] or [N, 1]", "found [10, 2]");
    /* IDX images with the wrong pixel count, and an IDX label over the class count. */
    uint8_t img[10 * 9] = {0}, lab[10] = {0};
    lab[5] = 200;
    write_idx(f, "img.gz", 3, (uint32_t[]){10, 3, 3}, img, sizeof img, 1);
    write_idx(f, "lab.gz", 1, (uint32_t[]){10}, lab, sizeof lab, 1);
    m.data.input = (DataSource){.kind = SRC_IDX, .file = "img.gz", .scale = 1};
    m.data.output = (DataSource){.kind = SRC_IDX, .file = "lab.gz", .scale = 1};
    LOAD_ERR(f, &m, 0, 0, "img.gz", "expected shape [N, 16] or images [N, h, w] with h*w = 16", "found [10, 3, 3]");
    uint8_t img16[10 * 16] = {0};
    write_idx(f, "img.gz", 3, (uint32_t[]){10, 4, 4}, img16, sizeof img16, 1);
    LOAD_ERR(f, &m, 0, 0, "lab.gz", "label 200 at row 5 is outside [0, 10)");
    /* A scale that overflows float32. */
    img16[3 * 16 + 5] = 255;
    write_idx(f, "img.gz", 3, (uint32_t[]){10, 4, 4}, img16, sizeof img16, 1);
    lab[5] = 0;
    write_idx(f, "lab.gz", 1, (uint32_t[]){10}, lab, sizeof lab, 1);
    m.data.input.scale = 1e38;
    LOAD_ERR(f, &m, 0, 0, "img.gz", "value 255 times scale 1e+38 at row 3, entry [1, 1] does not fit in float32");
}

/* ------------------------------------------------------------------------ reference data */

static void test_reference(T *t) {
    char spec[600], dir[600], err[1024];
    snprintf(spec, sizeof spec, "%s/specs/dino_small.dino", DINO_SHARED_DIR);
    snprintf(dir, sizeof dir, "%s/reference/dino_small", DINO_SHARED_DIR);
    if (access(spec, R_OK) != 0 || access(dir, R_OK) != 0) {
        t_skip(t, "no reference dino_small in DINO_SHARED_DIR (" DINO_SHARED_DIR ")");
        return;
    }
    Frontend fe;
    if (!CHECK(t, frontend_run(&fe, spec, stderr, 0, NULL) == 0 && fe.model)) {
        frontend_free(&fe);
        return;
    }
    const Model *m = fe.model;
    Dataset tr, te;
    err[0] = 0;
    if (CHECK_OK(t, data_load(m, dir, 1, 1, &tr, &te, err, sizeof err), err)) {
        CHECK(t, tr.n == 8 && te.n == 2 && tr.in == 6 && tr.out == 4 && tr.J && te.J);
        char p[700];
        snprintf(p, sizeof p, "%s/J_data.npy", dir);
        NpyArray a;
        if (CHECK_OK(t, npy_load(p, &a, err, sizeof err), err)) {
            /* The file is [10, 4, 6] float64: train rows then test rows, unchanged. */
            CHECK(t,
                  a.dtype == DT_F64 && memcmp(a.data, tr.J, 8 * 24 * sizeof(double)) == 0 &&
                      memcmp((const double *)a.data + 8 * 24, te.J, 2 * 24 * sizeof(double)) == 0);
            npy_free(&a);
        }
        data_free(&tr);
        data_free(&te);
    }
    frontend_free(&fe);
}

/* node_mnist.dino on the real MNIST files: separate test files, gzip IDX, scale 1/255. */
static void test_mnist(T *t) {
    char spec[600], dir[600], img[700], err[1024];
    snprintf(spec, sizeof spec, "%s/specs/node_mnist.dino", DINO_SHARED_DIR);
    snprintf(dir, sizeof dir, "%s/data/mnist", DINO_SHARED_DIR);
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte.gz", dir);
    if (access(spec, R_OK) != 0 || access(img, R_OK) != 0) {
        t_skip(t, "no MNIST in DINO_SHARED_DIR/data/mnist (" DINO_SHARED_DIR ")");
        return;
    }
    Frontend fe;
    if (!CHECK(t, frontend_run(&fe, spec, stderr, 0, NULL) == 0 && fe.model)) {
        frontend_free(&fe);
        return;
    }
    Dataset tr, te;
    err[0] = 0;
    if (CHECK_OK(t, data_load(fe.model, dir, 0, 0, &tr, &te, err, sizeof err), err)) {
        CHECK(t, tr.n == 60000 && te.n == 10000 && tr.in == 784 && tr.out == 10);
        CHECK(t, tr.classifier && tr.label && !tr.y && !tr.J && te.label);
        float lo = 1, hi = 0;
        for (int64_t k = 0; k < tr.n * tr.in; k++) {
            float v = ((float *)tr.x)[k];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        CHECK(t, lo == 0 && hi == (float)(255 * (1.0 / 255)));
        int64_t count[10] = {0};
        for (int64_t k = 0; k < te.n; k++) count[te.label[k]]++;
        CHECK(t, count[0] == 980 && count[9] == 1009); /* the published t10k class counts */
        data_free(&tr);
        data_free(&te);
    }
    frontend_free(&fe);
}

/* Two loaded sets hold the same bytes: x, y, J, labels. */
static int same_bytes(const Dataset *a, const Dataset *b) {
    size_t es = a->f64 ? 8 : 4, n = (size_t)a->n;
    if (a->n != b->n || a->f64 != b->f64 || !a->x != !b->x || !a->y != !b->y || !a->J != !b->J ||
        !a->label != !b->label)
        return 0;
    return (!a->x || memcmp(a->x, b->x, n * (size_t)a->in * es) == 0) &&
        (!a->y || memcmp(a->y, b->y, n * (size_t)a->out * es) == 0) &&
        (!a->J || memcmp(a->J, b->J, n * (size_t)a->out * (size_t)a->in * es) == 0) &&
        (!a->label || memcmp(a->label, b->label, n * 4) == 0);
}

/* Which of x, y, J, label are mapped, as a string "xyJl" with '-' for the others. */
static const char *mapped_str(const Dataset *d, char buf[5]) {
    const char *names = "xyJl";
    for (int k = 0; k < 4; k++) buf[k] = d->map[k].base ? names[k] : '-';
    buf[4] = 0;
    return buf;
}

/* The pages of [p, p + len) in the page cache, counted with mincore. */
static size_t resident_pages(const void *p, size_t len) {
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p - (uintptr_t)p % (uintptr_t)page;
    size_t n = ((uintptr_t)p + len - a + (size_t)page - 1) / (size_t)page, count = 0;
    unsigned char *v = malloc(n);
    if (!v || mincore((void *)a, n * (size_t)page, v) != 0) {
        free(v);
        return (size_t)-1;
    }
    for (size_t i = 0; i < n; i++) count += v[i] & 1;
    free(v);
    return count;
}

static void test_mapped(Fx *f) {
    T *t = f->t;
    char err[1024], e2[1024], mbuf[5];
    Model m = make_model(0);
    m.data.jac = npy_src("J_data.npy");
    m.data.split = SPLIT_COUNT;
    m.data.train = 6, m.data.valid = 2, m.data.test = 2;
    /* Files of the training dtype, out_in: x, y, J of all three sets point into the files, and
     * hold the bytes the copy holds. */
    for (int f64 = 0; f64 <= 1; f64++) {
        write_regression(f, 10, f64 ? DT_F64 : DT_F32, 1, 0);
        Dataset s[2][3]; /* [copied, mapped][train, valid, test] */
        int ok = CHECK_OK(t, load3(f, &m, f64, 0, &s[0][0], &s[0][1], &s[0][2], err, sizeof err), err);
        ok &= CHECK_OK(t, load3(f, &m, f64, 1, &s[1][0], &s[1][1], &s[1][2], err, sizeof err), err);
        for (int k = 0; ok && k < 3; k++) {
            CHECK(t, strcmp(mapped_str(&s[0][k], mbuf), "----") == 0 && data_mapped(&s[0][k]) == 0);
            if (!CHECK(t, strcmp(mapped_str(&s[1][k], mbuf), "xyJ-") == 0)) printf("  mapped: %s\n", mbuf);
            CHECK(t, data_mapped(&s[1][k]) == (size_t)s[1][k].n * (3 + 2 + 6) * (f64 ? 8 : 4));
            CHECK(t, same_bytes(&s[0][k], &s[1][k]));
        }
        CHECK(t,
              ok && rows_match(&s[1][0], 0, 1, !f64) && rows_match(&s[1][1], 6, 1, !f64) &&
                  rows_match(&s[1][2], 8, 1, !f64));
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 3; k++) data_free(&s[c][k]), data_free(&s[c][k]); /* a second free is harmless */
    }
    /* Not in place: another dtype than the precision (converted), a Jacobian stored in_out
     * (transposed), an unaligned file (npy_load copies it); the values are the same. */
    Dataset tr, va, te;
    write_regression(f, 10, DT_F64, 1, 0);
    if (CHECK_OK(t, load3(f, &m, 0, 1, &tr, &va, &te, err, sizeof err), err)) {
        CHECK(t, strcmp(mapped_str(&tr, mbuf), "----") == 0 && rows_match(&tr, 0, 1, 0));
        data_free(&tr), data_free(&va), data_free(&te);
    }
    write_regression(f, 10, DT_F64, 1, 1);
    Model mio = m;
    mio.data.jac.in_out = 1;
    if (CHECK_OK(t, load3(f, &mio, 1, 1, &tr, &va, &te, err, sizeof err), err)) {
        CHECK(t, strcmp(mapped_str(&tr, mbuf), "xy--") == 0 && rows_match(&tr, 0, 1, 0) && rows_match(&te, 8, 1, 0));
        data_free(&tr), data_free(&va), data_free(&te);
    }
    /* A scaled input is converted too (scale applies to any source). */
    write_regression(f, 10, DT_F64, 1, 0);
    Model msc = m;
    msc.data.input.scale = 2;
    if (CHECK_OK(t, load3(f, &msc, 1, 1, &tr, &va, &te, err, sizeof err), err)) {
        CHECK(t, strcmp(mapped_str(&tr, mbuf), "-yJ-") == 0 && get(&tr, tr.x, 3 * 2 + 1) == 2 * xval(2, 1));
        data_free(&tr), data_free(&va), data_free(&te);
    }
    /* Classifier labels: int32 in place, int64 converted. */
    Model mc = make_model(1);
    mc.data.split = SPLIT_COUNT;
    mc.data.train = 6, mc.data.test = -1;
    double xs[10 * 16], ls[10];
    for (int r = 0; r < 10; r++) {
        ls[r] = r;
        for (int k = 0; k < 16; k++) xs[r * 16 + k] = r + k / 100.0;
    }
    save(f, "x_data.npy", DT_F32, 2, (int64_t[]){10, 16}, xs);
    for (int i32 = 0; i32 <= 1; i32++) {
        save(f, "y_data.npy", i32 ? DT_I32 : DT_I64, 1, (int64_t[]){10}, ls);
        if (!CHECK_OK(t, load3(f, &mc, 0, 1, &tr, &va, &te, err, sizeof err), err)) continue;
        CHECK(t, strcmp(mapped_str(&tr, mbuf), i32 ? "x--l" : "x---") == 0 && tr.label[5] == 5 && te.label[3] == 9);
        CHECK(t, get(&te, te.x, 16 + 3) == (float)(7 + 3 / 100.0));
        data_free(&tr), data_free(&va), data_free(&te);
    }
    /* The errors of the mapped path are those of the copy, word for word: NaN in x, -Inf in J
     * (its entry named in the file's layout), a label out of range. */
    double *x = malloc(sizeof(double) * 30), *J = malloc(sizeof(double) * 60);
    for (int k = 0; k < 30; k++) x[k] = k;
    for (int k = 0; k < 60; k++) J[k] = k;
    x[4 * 3 + 2] = NAN;
    J[7 * 6 + 1 * 3 + 2] = -INFINITY;
    for (int which = 0; which < 3; which++) {
        write_regression(f, 10, DT_F32, 1, 0);
        const char *file = which == 0 ? "m_data.npy" : which == 1 ? "J_data.npy" : "y_data.npy";
        Model *mm = which == 2 ? &mc : &m;
        if (which == 0) save(f, file, DT_F32, 2, (int64_t[]){10, 3}, x);
        if (which == 1) save(f, file, DT_F32, 3, (int64_t[]){10, 2, 3}, J);
        if (which == 2) {
            ls[7] = 10;
            save(f, file, DT_I32, 1, (int64_t[]){10}, ls);
        }
        int rc1 = load3(f, mm, 0, 1, &tr, &va, &te, err, sizeof err);
        CHECK(t, tr.n == 0 && !tr.x && va.n == 0 && te.n == 0);
        int rc0 = load3(f, mm, 0, 0, &tr, &va, &te, e2, sizeof e2);
        const char *want = which == 0 ? "contains NaN at row 4, column 2"
            : which == 1              ? "contains -Inf at row 7, entry [1, 2]"
                                      : "label 10 at row 7 is outside [0, 10)";
        CHECK_ERR(t, rc1, err, fpath(f, file), want);
        if (!CHECK(t, rc0 == -1 && strcmp(err, e2) == 0)) printf("  mapped: %s\n  copied: %s\n", err, e2);
    }
    free(x), free(J);
    /* fio_map_range, under map_rows: a range off a page boundary reads the file's bytes there; a
     * file whose size changed since its header was read, or that is gone, is an error. */
    {
        const char *p = fpath(f, "J_data.npy");
        FILE *fp = fopen(p, "rb");
        unsigned char head[200] = {0};
        size_t got = fp ? fread(head, 1, sizeof head, fp) : 0;
        struct stat st;
        if (fp) fclose(fp);
        if (CHECK(t, got == sizeof head && stat(p, &st) == 0)) {
            FileMap fm;
            const void *at;
            if (CHECK_OK(t, fio_map_range(p, (size_t)st.st_size, 77, 100, &fm, &at, err, sizeof err), err)) {
                CHECK(t, memcmp(at, head + 77, 100) == 0 && (uintptr_t)fm.data % 4096 == 0 && fm.len == 177);
                fio_unmap(&fm);
            }
            CHECK_ERR(t, fio_map_range(p, (size_t)st.st_size + 8, 0, 16, &fm, &at, err, sizeof err), err, p,
                      "the file changed while it was being loaded");
            CHECK(t, fm.data == NULL && at == NULL);
            const char *gone = fpath(f, "gone.npy");
            CHECK_ERR(t, fio_map_range(gone, 100, 0, 16, &fm, &at, err, sizeof err), err, gone, "cannot open");
        }
    }
    /* Read-ahead: pages dropped from the page cache come back after data_prefetch (where the file
     * system lets them be dropped: not tmpfs). */
    enum { ROWS = 20000 };
    double *big = malloc(sizeof(double) * ROWS * 3), *bq = malloc(sizeof(double) * ROWS * 2);
    for (int k = 0; k < ROWS * 3; k++) big[k] = k;
    for (int k = 0; k < ROWS * 2; k++) bq[k] = -k;
    save(f, "m_data.npy", DT_F64, 2, (int64_t[]){ROWS, 3}, big);
    save(f, "q_data.npy", DT_F64, 2, (int64_t[]){ROWS, 2}, bq);
    remove(fpath(f, "J_data.npy"));
    Model mb = make_model(0);
    free(big), free(bq);
    Dataset btr, bte;
    if (CHECK_OK(t, load(f, &mb, 1, 0, &btr, &bte, err, sizeof err), err) && CHECK(t, btr.map[DATASET_X].base)) {
        size_t xbytes = (size_t)btr.n * 3 * 8;
        CHECK(t, data_resident(&btr) > 0.99); /* the load's check read every page */
        data_advise(&btr, DATASET_RANDOM);
        madvise(btr.map[DATASET_X].base, btr.map[DATASET_X].len, MADV_DONTNEED); /* our page table's view */
        int fd = open(fpath(f, "m_data.npy"), O_RDONLY);
        if (bte.map[DATASET_X].base) madvise(bte.map[DATASET_X].base, bte.map[DATASET_X].len, MADV_DONTNEED);
        for (int k = 0; fd >= 0 && k < 3; k++) { /* the page cache (clean pages; the kernel may need two tries) */
            fdatasync(fd);
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        }
        size_t before = resident_pages(btr.x, xbytes);
        int64_t rows[64];
        for (int i = 0; i < 64; i++) rows[i] = 8000 + i; /* 1.5 KiB: one or two pages */
        DataAhead da;
        CHECK(t, data_ahead_init(&da, 64) == 0);
        if (fd < 0 || before == (size_t)-1 || before > 2) {
            t_skip(t, "read-ahead: the file's pages could not be dropped from the page cache (tmpfs?)");
        } else {
            CHECK(t, data_resident(&btr) < 0.5); /* the sample sees the dropped pages */
            data_prefetch(&btr, rows, 64, &da);
            size_t after = 0;
            for (int k = 0; k < 200 && after == 0; k++) { /* the read is asynchronous */
                after = resident_pages((const double *)btr.x + 8000 * 3, 64 * 3 * 8);
                if (!after) nanosleep(&(struct timespec){0, 5000000}, NULL);
            }
            CHECK(t, after >= 1);
            size_t far = resident_pages((const double *)btr.x + 12000 * 3, 64 * 3 * 8);
            CHECK(t, far == 0); /* only the rows asked for */
            if (t->verbose)
                printf("  read-ahead: %zu pages resident before, %zu after, %zu far away\n", before, after, far);
        }
        if (fd >= 0) close(fd);
        data_ahead_free(&da);
        data_free(&btr), data_free(&bte);
    }
}

/* data_load_sets_source: float64 files kept as float64 for float32 training (the reduced path),
 * each part mapped and flagged f32_train; data_convert gives the bytes of a float32 load; a part
 * whose files do not all map as float64 (a Jacobian stored in_out) is loaded in float32 as
 * before; f64 training and keep_f64 0 are data_load_sets. */
static void test_keep_f64(Fx *f) {
    T *t = f->t;
    char err[1024], mbuf[5];
    Model m = make_model(0);
    m.data.jac = npy_src("J_data.npy");
    m.data.split = SPLIT_COUNT;
    m.data.train = 6, m.data.valid = 2, m.data.test = 2;
    write_regression(f, 10, DT_F64, 1, 0);
    Dataset k[3], c[3]; /* kept, float32 load: train, valid, test */
    int ok = CHECK_OK(t, data_load_sets_source(&m, f->dir, 0, 1, 1, &k[0], &k[1], &k[2], err, sizeof err), err);
    ok &= CHECK_OK(t, data_load_sets(&m, f->dir, 0, 1, &c[0], &c[1], &c[2], err, sizeof err), err);
    for (int i = 0; ok && i < 3; i++) {
        CHECK(t, k[i].f64 == 1 && k[i].f32_train == 1 && strcmp(mapped_str(&k[i], mbuf), "xyJ-") == 0);
        CHECK(t, c[i].f64 == 0 && c[i].f32_train == 0);
        CHECK(t, data_convert(&k[i], 0, "training", err, sizeof err) == 0);
        CHECK(t, k[i].f64 == 0 && k[i].f32_train == 0 && data_mapped(&k[i]) == 0 && same_bytes(&k[i], &c[i]));
        CHECK(t, data_convert(&k[i], 0, "training", err, sizeof err) == 0 && same_bytes(&k[i], &c[i])); /* no-op */
    }
    for (int i = 0; i < 3; i++) data_free(&k[i]), data_free(&c[i]);
    /* float64 training, or keep_f64 0: as data_load_sets */
    ok = CHECK_OK(t, data_load_sets_source(&m, f->dir, 1, 1, 1, &k[0], &k[1], &k[2], err, sizeof err), err);
    CHECK(t, ok && k[0].f64 == 1 && k[0].f32_train == 0);
    for (int i = 0; i < 3; i++) data_free(&k[i]);
    ok = CHECK_OK(t, data_load_sets_source(&m, f->dir, 0, 0, 1, &k[0], &k[1], &k[2], err, sizeof err), err);
    CHECK(t, ok && k[0].f64 == 0 && k[0].f32_train == 0);
    for (int i = 0; i < 3; i++) data_free(&k[i]);
    /* a Jacobian stored in_out would be transposed (a copy): the part is loaded in float32 */
    write_regression(f, 10, DT_F64, 1, 1);
    Model mio = m;
    mio.data.jac.in_out = 1;
    ok = CHECK_OK(t, data_load_sets_source(&mio, f->dir, 0, 1, 1, &k[0], &k[1], &k[2], err, sizeof err), err);
    CHECK(t, ok && k[0].f64 == 0 && k[0].f32_train == 0 && rows_match(&k[0], 0, 1, 0));
    for (int i = 0; i < 3; i++) data_free(&k[i]);
}

int main(int argc, char **argv) {
    T t;
    if (t_begin(&t, argc, argv, "data")) return 1;
    Fx f = {.t = &t};
    snprintf(f.dir, sizeof f.dir, "%s/data", t.dir);
    if (mkdir(f.dir, 0700) != 0) {
        printf("FAIL: cannot create %s\n", f.dir);
        return 1;
    }
    test_regression(&f);
    test_gather(&f);
    test_classifier(&f);
    test_splits(&f);
    test_valid(&f);
    test_errors(&f);
    test_label_errors(&f);
    test_mapped(&f);
    test_keep_f64(&f);
    test_reference(&t);
    test_mnist(&t);
    return t_end(&t, "runtime_data");
}

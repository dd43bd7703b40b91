/* emit_cuda_share.c - a CUDA program's text: its tile kernels and kernels, written to memory,
 * then grouped where they are equal but for their numbers (share.c).
 *
 * Compile time. Code that is equal but for its numbers is written once (share.c): equal stages
 * of the tile kernels, and equal kernels (an MLP's layers, a checkpointed step's segments, the
 * gradient sums), become __noinline__ functions; their calls pass the kernel's arguments as one
 * struct and their numbers as pointers into two tables of the program, and repeated calls are
 * loops (in loops) over those tables (emit_stages). NVRTC's time then grows with the distinct
 * code, not with the steps. */
#include "fuse.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Stages of tile kernels that are equal but for their numbers and node names (the steps of an
 * ODE solve, the checkpoint segments of a training step; share.c) become one __noinline__
 * function of the program, and each stage a call: NVRTC then compiles a long solve's code once
 * instead of once per step. The numbers in which a group's items differ go to two tables of
 * the program, dino_<program>_L (integers) and _D (reals); a call passes the kernel's arguments
 * as one struct (DinoTrainArgs) and a pointer into each table, so its cost does not grow with
 * the numbers. */
/* Named integer constants that may differ like backquoted numbers: parameter offsets
 * (P_q_1_weight, P3_a_b) and slot offsets (wp_v12, wt_v12). */
static int cuda_symbol(const char *b, size_t len, const void *ctx) {
    (void)ctx;
    if (len > 3 && b[0] == 'w' && (b[1] == 'p' || b[1] == 't') && b[2] == '_') return 1;
    return len > 2 && b[0] == 'P' && (b[1] == '_' || (b[1] >= '0' && b[1] <= '9'));
}

static const ShareRules CUDA_RULES = {
    .prefixes = "vt", .marked_only = 1, .param_format = "%c[%d]", .symbol = cuda_symbol};

/* Whether code uses identifier `name` (outside comments, not as a member). */
static int uses_name(const char *text, const char *name) {
    size_t len = strlen(name);
    for (const char *c = text; *c;) {
        if (c[0] == '/' && c[1] == '*') {
            const char *end = strstr(c + 2, "*/");
            if (!end) return 0;
            c = end + 2;
        } else if (isalpha((unsigned char)*c) || *c == '_') {
            const char *w = c;
            while (isalnum((unsigned char)*c) || *c == '_') c++;
            int member = w > text && (w[-1] == '.' || w[-1] == '>'); /* threadIdx.x is not x */
            if (!member && (size_t)(c - w) == len && memcmp(w, name, len) == 0) return 1;
        } else if (isdigit((unsigned char)*c)) {
            while (isalnum((unsigned char)*c) || *c == '.') c++; /* 1e5f: not the name e5f */
        } else {
            c++;
        }
    }
    return 0;
}

/* The function shared by group g (its first item): the kernels' arguments, `extra`, then the
 * numbers in which the group's items differ. */
static void emit_shared_function(Emit *E, const char *name, const char *extra, const ShareItem *g) {
    out(E,
        "__device__ __noinline__ void %s(const Dino%sArgs &kargs%s, const long *__restrict__ L, "
        "const double *__restrict__ D) {\n",
        name, E->train ? "Train" : "Predict", extra);
    static const char *const names[] = {"P", "G", "n", "nmax", "x", "y", "J", "label", "w", "terms", "work"};
    int all = uses_name(g->text, "DINO_ARGS");                /* a tile kernel's body: all of them, for its stages */
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) /* the kernel arguments it uses */
        if (all || uses_name(g->text, names[i]))
            out(E, i == 2 || i == 3 ? "    const int %s = kargs.%s;\n" : "    auto *__restrict__ %s = kargs.%s;\n",
                names[i], names[i]);
    share_scan(g->text, E->out, NULL, g->kind, g->slot, &CUDA_RULES);
    out(E, "}\n");
}

/* Appends the numbers of item `it` of group g to the program's tables; *L and *D (if not NULL)
 * get where they start. */
static void table_add(Emit *E, const ShareItem *g, const ShareItem *it, long *L, long *D) {
    if (L) *L = E->n_table[0];
    if (D) *D = E->n_table[1];
    E->table_newline[0] = E->table_newline[1] = 1;
    for (int p = 0; p < g->n_nums; p++)
        if (g->kind[p]) cuda_table_number(E, g->kind[p] == 'D', it->nums[p]);
}

/* The loops a call is in (a nest of runs, below): each loop's variable and how far one of its
 * repeats moves in the tables. */
typedef struct {
    int depth;
    long stride[MAX_LOOPS][2]; /* L, D */
} Loops;

/* The table arguments of a call: its numbers start at L and D, plus each loop variable times
 * its stride; marked: the start backquoted (a number in which equal kernel bodies may differ). */
static void emit_table_args(Emit *E, long L, long D, const Loops *in, int marked) {
    E->table_used = 1;
    for (int t = 0; t < 2; t++) {
        out(E, marked ? ", dino_%s_%c + `%ld`" : ", dino_%s_%c + %ld", E->name, t ? 'D' : 'L', t ? D : L);
        for (int d = 0; in && d < in->depth; d++)
            if (in->stride[d][t]) out(E, " + k%d * %ld", d, in->stride[d][t]);
    }
}

/* The first node of stage g (of all the program's tile kernels' stages); NULL: it has none (the
 * results). */
static const IrNode *stage_node(const Emit *E, int g) {
    int u = 0;
    while (u + 1 < E->n_units && (E->units[u].count <= 1 || E->first_stage[u] + E->units[u].count <= g)) u++;
    const Kernel *k = &E->kernels[E->units[u].first + g - E->first_stage[u]];
    return k->count ? member(E, k, 0) : NULL;
}

/* A stage in a comment: its first node (renamed from the model), or its number. */
static void stage_ref(const Emit *E, int u, int i, char *buf, size_t len) {
    const IrNode *v = stage_node(E, E->first_stage[u] + i);
    if (v) snprintf(buf, len, "v%d", v->id);
    else snprintf(buf, len, "%d", i);
}

/* The node that names the function group g of equal stages shares (dino_train_stage_v12,
 * renamed from the model): see names_first. */
static int stage_first(const Emit *E, int g) {
    int n = 0;
    for (int u = 0; u < E->n_units; u++)
        if (E->units[u].count > 1) n = E->first_stage[u] + E->units[u].count;
    const IrNode *best = stage_node(E, g);
    for (int j = g + 1; j < n && best; j++)
        if (E->stages[j].group == g && stage_node(E, j) && names_first(stage_node(E, j), best)) best = stage_node(E, j);
    return best ? best->id : -g - 1;
}

/* The name of the function group g of equal stages shares. */
static void stage_fn_name(const Emit *E, int g, char *buf, size_t len) {
    int id = stage_first(E, g);
    if (id >= 0) snprintf(buf, len, "dino_%s_stage_v%d", E->name, id);
    else snprintf(buf, len, "dino_%s_stage%d", E->name, g);
}

static void emit_shared_stage(Emit *E, int g) {
    const ShareItem *st = E->stages;
    char name[96];
    stage_fn_name(E, g, name, sizeof name);
    out(E, "\n/* stages of %s's tile kernels (steps of an ODE solve) do this on other buffers and numbers */\n",
        E->name);
    emit_shared_function(E, name, ", const long s0, const long s1", &st[g]);
}

/* Runs: the calls of a long solve repeat with a period (a step's stages; in a checkpointed
 * training step, a segment's recomputation and tangents), so a run of R repeats of the same p
 * shared stages is a loop, whose body is written the same way (loops in loops). */

/* The longest run at stage i of the stages st[i .. n): its period (0: none) and repeats. */
static int find_run(const ShareItem *st, int n, int i, int *repeats) {
    int best_p = 0, best_r = 0;
    for (int p = 1; p <= MAX_PERIOD && i + 2 * p <= n; p++) {
        int ok = 1;
        for (int q = 0; q < p && ok; q++) ok = st[i + q].index >= 0 && st[i + p + q].group == st[i + q].group;
        if (!ok) continue;
        int r = 2;
        while (i + (r + 1) * p <= n) {
            int same = 1;
            for (int q = 0; q < p && same; q++) same = st[i + r * p + q].group == st[i + q].group;
            if (!same) break;
            r++;
        }
        if (p * r > best_p * best_r) best_p = p, best_r = r;
    }
    *repeats = best_r;
    return best_p;
}

/* Stages [i, end) of unit u, inside the loops `in`; off[j] is where stage j's numbers start in
 * the tables (L, D), for the first repeat of every loop it is in. */
static void emit_stages(Emit *E, int u, int i, int end, Loops *in, long (*off)[2]) {
    const ShareItem *st = E->stages + E->first_stage[u];
    char pad[4 * MAX_LOOPS + 8];
    snprintf(pad, sizeof pad, "%*s", 4 * (in->depth + 1), "");
    while (i < end) {
        int r, p = in->depth < MAX_LOOPS ? find_run(st, end, i, &r) : 0;
        if (p) {
            char from[32], to[32];
            stage_ref(E, u, i, from, sizeof from);
            stage_ref(E, u, i + p * r - 1, to, sizeof to);
            out(E, "\n%sfor (int k%d = 0; k%d < %d; k%d++) {   /* stages %s .. %s: %d times the same %d stages */\n",
                pad, in->depth, in->depth, r, in->depth, from, to, r, p);
            in->stride[in->depth][0] = off[i + p][0] - off[i][0];
            in->stride[in->depth][1] = off[i + p][1] - off[i][1];
            in->depth++;
            emit_stages(E, u, i, i + p, in, off);
            in->depth--;
            out(E, "%s}\n", pad);
            i += p * r;
        } else if (st[i].index < 0) {
            fputs(st[i].text, E->out); /* backquotes kept: equal tile kernels share a body */
            i++;
        } else {
            char fn[96];
            stage_fn_name(E, st[i].group, fn, sizeof fn);
            out(E, "%s%s%s(args, s0, s1", in->depth ? "" : "\n", pad, fn);
            emit_table_args(E, off[i][0], off[i][1], in, 1);
            char at[32];
            stage_ref(E, u, i, at, sizeof at);
            out(E, ");   /* stage %s */\n", at);
            i++;
        }
    }
}

/* The stages of tile kernel u, each written to memory (st[0 .. count)), for share_group. */
static int render_stages(Emit *E, int u, ShareItem *st) {
    const Unit *un = &E->units[u];
    FILE *file = E->out;
    int rc = 0;
    for (int i = 0; i < un->count; i++) {
        size_t len;
        E->stage = i;
        E->out = open_memstream(&st[i].text, &len);
        if (!rc) rc = cuda_emit_kernel(E, un->first + i);
        fclose(E->out);
    }
    E->out = file;
    E->stage = -1;
    return rc;
}

/* Tile kernel u, its stages from E->stages; their numbers go to the tables in order. */
static void emit_tile_kernel(Emit *E, int u) {
    const Unit *un = &E->units[u];
    const CudaLaunch *l = &E->launch[u];
    const ShareItem *all = E->stages, *st = all + E->first_stage[u];
    long(*off)[2] = malloc(sizeof *off * (size_t)(un->count + 1));
    int shared = 0;
    for (int i = 0; i <= un->count; i++) {
        off[i][0] = E->n_table[0], off[i][1] = E->n_table[1];
        if (i < un->count && st[i].index >= 0) table_add(E, &all[st[i].group], &st[i], NULL, NULL), shared = 1;
    }
    out(E,
        "\n/* ---- %s: tile kernel; each block takes a tile of ceil(n / gridDim.x) samples through\n"
        " * every stage below; grid (min(n, tiles), 1, 1), block %d */\n",
        l->kernel, THREADS);
    out(E, "extern \"C\" __global__ void __launch_bounds__(%d) %s(DINO_%s_PARAMS) {\n", THREADS, l->kernel,
        E->train ? "TRAIN" : "PREDICT");
    out(E, "    const long tile = ((long)n + gridDim.x - 1) / gridDim.x;\n");
    out(E, "    const long s0 = (long)blockIdx.x * tile, s1 = dino_minl(n, s0 + tile);   /* this block's samples */\n");
    out(E, "    if (s0 >= s1) return;\n");
    if (shared)
        out(E, "    const Dino%sArgs args = DINO_ARGS;   /* for the shared stages */\n",
            E->train ? "Train" : "Predict");
    Loops in = {0};
    emit_stages(E, u, 0, un->count, &in, off);
    out(E, "}\n");
    free(off);
}

/* Groups the pieces of code that are equal but for their numbers (share.c); with sharing off,
 * or after an error, each piece stands alone. */
static void group_items(const Emit *E, ShareItem *items, int n, int rc) {
    if (!rc && E->share) share_group(items, n, &CUDA_RULES);
    else
        for (int i = 0; i < n; i++) items[i].group = i, items[i].index = -1;
}

/* The node that names the function group g of equal kernel bodies shares: see names_first. */
static int body_first(const Emit *E, const ShareItem *items, int n, const int *unit_of, int g) {
    const IrNode *best = NULL;
    for (int j = g; j < n; j++) {
        if (items[j].group != g) continue;
        const IrNode *v = member(E, &E->kernels[E->units[unit_of[j]].first], 0);
        if (!best || names_first(v, best)) best = v;
    }
    return best->id;
}

int cuda_write_program(Emit *E) {
    int tiles = 0;
    for (int u = 0; u < E->n_units; u++) tiles += E->units[u].count > 1;
    out(E, "\n/* ---------------------------------------------------------------------------- %s */\n", E->name);
    if (E->n_units == 1) out(E, "/* 1 kernel%s", tiles ? ", a tile kernel" : "");
    else out(E, "/* %d kernels", E->n_units);
    if (E->n_units > 1 && tiles) out(E, ", %d of them tile kernels", tiles);
    out(E, "; the workspace is nmax * dino_%s_work reals */\n", E->name);
    cuda_slot_table(E);
    for (int i = 0; i < E->live.n; i++) { /* constants with one value per row */
        const IrNode *v = E->live.items[i];
        if (v->op != IR_CONST || !v->vals) continue;
        out(E, "__device__ const real dino_%s_rows_v%d[%d] = {", E->name, v->id, v->rows);
        for (int r = 0; r < v->rows; r++) out(E, "%s(real)%.17g", r ? ", " : "", v->vals[r]);
        out(E, "};   /* ");
        emit_comment_text(E->out, v->name ? v->name : "per-row constant");
        out(E, " */\n");
    }
    /* the stages of the tile kernels, written to memory: equal ones share a function */
    char *table_text[2];
    size_t table_len[2];
    for (int t = 0; t < 2; t++) E->table[t] = open_memstream(&table_text[t], &table_len[t]), E->n_table[t] = 0;
    E->table_used = 0;
    E->first_stage = calloc((size_t)E->n_units + 1, sizeof(int));
    int n_stages = 0, rc = 0;
    for (int u = 0; u < E->n_units; u++) {
        E->first_stage[u] = n_stages;
        if (E->units[u].count > 1) n_stages += E->units[u].count;
    }
    E->stages = calloc((size_t)n_stages + 1, sizeof(ShareItem));
    for (int u = 0; u < E->n_units && !rc; u++)
        if (E->units[u].count > 1) rc = render_stages(E, u, E->stages + E->first_stage[u]);
    group_items(E, E->stages, n_stages, rc);
    for (int i = 0; i < n_stages && !rc; i++)
        if (E->stages[i].group == i && E->stages[i].index >= 0) emit_shared_stage(E, i);

    /* every kernel written to memory: kernels of their own whose bodies are equal but for
     * their numbers share one __noinline__ function (share.c), called by each kernel */
    ShareItem *items = calloc((size_t)E->n_units + 1, sizeof(ShareItem)); /* the bodies */
    char **head = calloc((size_t)E->n_units + 1, sizeof(char *));
    int *unit_of = calloc((size_t)E->n_units + 1, sizeof(int)), *item_of = calloc((size_t)E->n_units + 1, sizeof(int));
    FILE *file = E->out;
    int n_bodies = 0;
    for (int u = 0; u < E->n_units && !rc; u++) {
        size_t len;
        E->out = open_memstream(&head[u], &len);
        if (E->units[u].count > 1) emit_tile_kernel(E, u);
        else rc = cuda_emit_kernel(E, E->units[u].first);
        fclose(E->out);
        item_of[u] = -1;
        char *sig = strstr(head[u], "extern \"C\" __global__");
        char *open = sig ? strchr(sig, '\n') : NULL;
        size_t hl = open ? (size_t)(open + 1 - head[u]) : 0, total = strlen(head[u]);
        if (!open || total < hl + 2) continue;
        items[n_bodies].text = strndup(head[u] + hl, total - hl - 2); /* without the closing "}\n" */
        head[u][hl] = 0;
        unit_of[n_bodies] = u, item_of[u] = n_bodies++;
    }
    E->out = file;
    group_items(E, items, n_bodies, rc);
    long *at = calloc((size_t)n_bodies + 1, 2 * sizeof(long)); /* where each body call's numbers start */
    for (int i = 0; i < n_bodies && !rc; i++)
        if (items[i].index >= 0)
            table_add(E, &items[items[i].group], &items[i], &at[2 * i], &at[2 * i + 1]), E->table_used = 1;
    for (int t = 0; t < 2; t++) { /* the tables */
        fclose(E->table[t]);
        if (rc || !E->table_used) continue;
        out(E, "\n/* the numbers of the shared functions' calls: %s */\n",
            E->n_table[t] ? (t ? "reals" : "integers")
                : t       ? "reals (none; the calls point here all the same)"
                          : "integers (none; the calls point here all the same)");
        out(E, "__device__ const %s dino_%s_%c[%ld] = {\n%s%s\n};\n", t ? "double" : "long", E->name, t ? 'D' : 'L',
            E->n_table[t] ? E->n_table[t] : 1, table_text[t], E->n_table[t] ? "" : "    0");
    }
    for (int i = 0; i < n_bodies && !rc; i++) {
        if (items[i].group != i || items[i].index < 0) continue;
        char name[64];
        snprintf(name, sizeof name, "dino_%s_body_v%d", E->name, body_first(E, items, n_bodies, unit_of, i));
        out(E, "\n/* the body of kernels that differ only in buffers and numbers (the kernels below call it) */\n");
        emit_shared_function(E, name, "", &items[i]);
    }
    for (int u = 0; u < E->n_units && !rc; u++) {
        share_strip(head[u], E->out, &CUDA_RULES);
        int i = item_of[u];
        if (i < 0) continue;
        if (items[i].index < 0) {
            share_strip(items[i].text, E->out, &CUDA_RULES);
        } else {
            out(E, "    const Dino%sArgs args = DINO_ARGS;\n", E->train ? "Train" : "Predict");
            out(E, "    dino_%s_body_v%d(args", E->name, body_first(E, items, n_bodies, unit_of, items[i].group));
            emit_table_args(E, at[2 * i], at[2 * i + 1], NULL, 0);
            out(E, ");\n");
        }
        out(E, "}\n");
    }
    for (int u = 0; u < E->n_units; u++) free(head[u]);
    free(head), free(unit_of), free(item_of), free(at);
    for (int t = 0; t < 2; t++) free(table_text[t]);
    share_free(items, n_bodies);
    share_free(E->stages, n_stages);
    free(E->first_stage);
    E->stages = NULL, E->first_stage = NULL;
    return rc ? -1 : 0;
}

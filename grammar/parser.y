/* parser.y - tokens -> AST for .dino files.
 *
 * A pure (reentrant) LR(1) parser with locations and no conflicts (%expect 0). It knows the
 * block structure of the language (model, basis, data, loss, train, ode, pint) and expressions;
 * settings lines are kept as generic clauses of items and given meaning by check.c.
 * After a syntax error it reports, skips to the end of the statement (or over a whole unknown
 * section), and goes on. The tables are canonical LR with default reductions only where the
 * parser accepts (the grammar is small, so they stay small): an error is then detected in the
 * state where it happens, and the tokens listed as expected are exactly those that fit there. */
%define api.pure full
%define api.location.type {Loc}
%define parse.error custom
%define lr.type canonical-lr
%define lr.default-reduction accepting
%locations
%expect 0
%param {void *scanner}
%parse-param {ParseCtx *ctx}

%code requires {
#include "ast.h"
#include "parse.h"
}

%code provides {
int yylex(YYSTYPE *yylval, YYLTYPE *yylloc, void *scanner);
}

%code {
#include <stdio.h>
#include <string.h>

#define YYLLOC_DEFAULT(Cur, Rhs, N)                                            \
    do {                                                                       \
        if (N) {                                                               \
            (Cur).line = YYRHSLOC(Rhs, 1).line;                                \
            (Cur).col = YYRHSLOC(Rhs, 1).col;                                  \
            (Cur).end_line = YYRHSLOC(Rhs, N).end_line;                        \
            (Cur).end_col = YYRHSLOC(Rhs, N).end_col;                          \
        } else {                                                               \
            (Cur).line = (Cur).end_line = YYRHSLOC(Rhs, 0).end_line;           \
            (Cur).col = (Cur).end_col = YYRHSLOC(Rhs, 0).end_col;              \
        }                                                                      \
    } while (0)

static void yyerror(YYLTYPE *loc, void *scanner, ParseCtx *ctx, const char *msg) {
    (void)scanner;
    if (strcmp(msg, "memory exhausted") == 0)
        diag_error(ctx->diag, *loc, "input nested too deeply (parser stack exhausted)");
    else
        diag_error(ctx->diag, *loc, "%s", msg);
}

/* The nesting depth of a new node; deeper than PARSE_MAX_DEPTH becomes an error node, so
 * later recursive passes never see a deep tree. */
static Expr *bound_depth(ParseCtx *ctx, Expr *e) {
    int d = 0;
    if (e->lhs && e->lhs->depth > d) d = e->lhs->depth;
    if (e->rhs && e->rhs->depth > d) d = e->rhs->depth;
    for (int i = 0; i < e->n_args; i++)
        if (e->args[i].value->depth > d) d = e->args[i].value->depth;
    e->depth = d + 1;
    if (e->depth <= PARSE_MAX_DEPTH) return e;
    if (!ctx->depth_reported)
        diag_error(ctx->diag, e->loc, "expression nested more than %d levels deep (each operator, sign and call is a level)",
                   PARSE_MAX_DEPTH);
    ctx->depth_reported = 1;
    Expr *err = expr_new(ctx->arena, E_ERROR, e->loc);
    err->depth = 1;
    return err;
}

static Expr *binary(ParseCtx *ctx, char op, Expr *l, Expr *r, Loc loc) {
    Expr *e = expr_new(ctx->arena, E_BINARY, loc);
    e->op = op;
    e->lhs = l;
    e->rhs = r;
    return bound_depth(ctx, e);
}

static Expr *with_args(ParseCtx *ctx, Expr *e, PtrVec *v) {
    e->n_args = v->n;
    e->args = arena_alloc(ctx->arena, sizeof(Arg) * (size_t)(v->n ? v->n : 1));
    for (int i = 0; i < v->n; i++) e->args[i] = *(Arg *)v->items[i];
    return bound_depth(ctx, e);
}

static Arg *arg_new(ParseCtx *ctx, const char *name, Loc name_loc, Expr *value) {
    Arg *a = arena_alloc(ctx->arena, sizeof *a);
    a->name = name;
    a->name_loc = name_loc;
    a->value = value;
    return a;
}

static Stmt **freeze_stmts(ParseCtx *ctx, PtrVec *v, int *n) {
    *n = v->n;
    Stmt **s = arena_alloc(ctx->arena, sizeof(Stmt *) * (size_t)(v->n ? v->n : 1));
    for (int i = 0; i < v->n; i++) s[i] = v->items[i];
    return s;
}

static Clause *clause_new(ParseCtx *ctx, PtrVec *items, Loc loc) {
    Clause *c = arena_alloc(ctx->arena, sizeof *c);
    c->n_items = items->n;
    c->items = (Expr **)items->items;
    c->loc = loc;
    return c;
}

static Stmt *setting_new(ParseCtx *ctx, PtrVec *clauses, Loc loc, StmtKind kind) {
    Stmt *s = stmt_new(ctx->arena, kind, loc);
    s->n_clauses = clauses->n;
    s->clauses = arena_alloc(ctx->arena, sizeof(Clause) * (size_t)clauses->n);
    for (int i = 0; i < clauses->n; i++) s->clauses[i] = *(Clause *)clauses->items[i];
    return s;
}

static Section *section_new(ParseCtx *ctx, SectionKind kind, Loc loc, const char *name, PtrVec *body) {
    Section *s = arena_alloc(ctx->arena, sizeof *s);
    s->kind = kind;
    s->loc = loc;
    s->name = name;
    s->body = freeze_stmts(ctx, body, &s->n_body);
    return s;
}
}

%union {
    double num;
    char *str;
    Expr *expr;
    Arg *arg;
    Stmt *stmt;
    Section *section;
    PtrVec vec;
}

%token <str> IDENT  "name"
%token <num> NUMBER "number"
%token <str> STRING "string"
%token SEP    "end of line"
%token MODEL  "'model'"
%token DATA   "'data'"
%token LOSS   "'loss'"
%token TRAIN  "'train'"
%token BASIS  "'basis'"
%token INPUT  "'input'"
%token OUTPUT "'output'"
%token ODE    "'ode'"
%token IN     "'in'"
%token PINT   "'pint'"

%type <expr> expr primary word item
%type <str> section_word
%type <arg> arg
%type <vec> args items clauses list body stmts
%type <stmt> stmt ode_stmt
%type <section> section

%left '+' '-'
%left '*' '/'
%precedence NEG

%%

file
    : %empty                    { }
    | file SEP
    | file section              { ptrvec_push(ctx->arena, &ctx->sections, $2); }
    | file error SEP            { yyerrok; }
    | file error '{' body '}'   { yyerrok; }   /* skips an unknown section as a whole */
    ;

section
    : MODEL IDENT '{' body '}'  { $$ = section_new(ctx, SEC_MODEL, @1, $2, &$4); }
    | MODEL '{' body '}'        { diag_error(ctx->diag, @2, "a model needs a name: model NAME { ... }");
                                  $$ = section_new(ctx, SEC_MODEL, @1, "model", &$3); }
    | DATA '{' body '}'         { $$ = section_new(ctx, SEC_DATA, @1, NULL, &$3); }
    | LOSS '{' body '}'         { $$ = section_new(ctx, SEC_LOSS, @1, NULL, &$3); }
    | TRAIN '{' body '}'        { $$ = section_new(ctx, SEC_TRAIN, @1, NULL, &$3); }
    | BASIS '{' body '}'        { $$ = section_new(ctx, SEC_BASIS, @1, NULL, &$3); }
    ;

/* Statements separated by newlines or ';', with any number of blank lines around them. */
body
    : opt_seps                  { $$ = (PtrVec){0}; }
    | opt_seps stmts opt_seps   { $$ = $2; }
    ;

stmts
    : stmt                      { $$ = (PtrVec){0}; ptrvec_push(ctx->arena, &$$, $1); }
    | stmts seps stmt           { $$ = $1; ptrvec_push(ctx->arena, &$$, $3); }
    ;

seps: SEP | seps SEP ;
opt_seps: %empty | seps ;

stmt
    : INPUT IDENT '[' expr ']'  { $$ = stmt_new(ctx->arena, S_INPUT, @$); $$->name = $2;
                                  $$->name_loc = @2; $$->size = $4; }
    | OUTPUT IDENT '[' expr ']' { $$ = stmt_new(ctx->arena, S_OUTPUT, @$); $$->name = $2;
                                  $$->name_loc = @2; $$->size = $4; }
    | items '=' expr            { PtrVec one = {0};
                                  ptrvec_push(ctx->arena, &one, clause_new(ctx, &$1, @1));
                                  $$ = setting_new(ctx, &one, @$, S_ASSIGN); $$->value = $3; }
    | clauses                   { $$ = setting_new(ctx, &$1, @$, S_SETTING); }
    | ode_stmt                  { $$ = $1; }
    | PINT IDENT '{' body '}'   { $$ = stmt_new(ctx->arena, S_PINT, @$); $$->name = $2;
                                  $$->name_loc = @2; $$->body = freeze_stmts(ctx, &$4, &$$->n_body); }
    | error                     { $$ = stmt_new(ctx->arena, S_ERROR, @$); }
    ;

ode_stmt
    : ODE IDENT '=' expr ',' IDENT IN '[' expr ',' expr ']' '{' body '}' {
                                  $$ = stmt_new(ctx->arena, S_ODE, @$);
                                  $$->loc = loc_span(@1, @12);
                                  $$->name = $2; $$->name_loc = @2; $$->value = $4;
                                  $$->time = $6; $$->time_loc = @6; $$->t0 = $9; $$->t1 = $11;
                                  $$->body = freeze_stmts(ctx, &$14, &$$->n_body); }
    ;

/* A settings line: clauses separated by commas, each a run of items. */
clauses
    : items                     { $$ = (PtrVec){0}; ptrvec_push(ctx->arena, &$$, clause_new(ctx, &$1, @1)); }
    | clauses ',' items         { $$ = $1; ptrvec_push(ctx->arena, &$$, clause_new(ctx, &$3, @3)); }
    ;

items
    : item                      { $$ = (PtrVec){0}; ptrvec_push(ctx->arena, &$$, $1); }
    | items item                { $$ = $1; ptrvec_push(ctx->arena, &$$, $2); }
    ;

/* Items are words, not parenthesised expressions: `adam (x)` would be ambiguous. */
item
    : word                      { $$ = $1; }
    | word '/' word             { $$ = binary(ctx, '/', $1, $3, @$); }
    | '-' word                  { $$ = expr_new(ctx->arena, E_NEG, @$); $$->lhs = $2;
                                  $$ = bound_depth(ctx, $$); }
    ;

expr
    : primary                   { $$ = $1; }
    | expr '+' expr             { $$ = binary(ctx, '+', $1, $3, @$); }
    | expr '-' expr             { $$ = binary(ctx, '-', $1, $3, @$); }
    | expr '*' expr             { $$ = binary(ctx, '*', $1, $3, @$); }
    | expr '/' expr             { $$ = binary(ctx, '/', $1, $3, @$); }
    | '-' expr %prec NEG        { $$ = expr_new(ctx->arena, E_NEG, @$); $$->lhs = $2;
                                  $$ = bound_depth(ctx, $$); }
    ;

primary
    : word                      { $$ = $1; }
    | '(' expr ')'              { $$ = $2; }
    ;

word
    : NUMBER                    { $$ = expr_new(ctx->arena, E_NUM, @$); $$->num = $1; $$->depth = 1; }
    | STRING                    { $$ = expr_new(ctx->arena, E_STR, @$); $$->str = $1; $$->depth = 1; }
    | IDENT                     { $$ = expr_new(ctx->arena, E_NAME, @$); $$->str = $1; $$->depth = 1; }
    | section_word              { $$ = expr_new(ctx->arena, E_NAME, @$); $$->str = $1; $$->depth = 1; }
    | IDENT '(' ')'             { $$ = expr_new(ctx->arena, E_CALL, @$); $$->str = $1;
                                  PtrVec none = {0}; $$ = with_args(ctx, $$, &none); }
    | IDENT '(' args ')'        { $$ = expr_new(ctx->arena, E_CALL, @$); $$->str = $1;
                                  $$ = with_args(ctx, $$, &$3); }
    | '[' ']'                   { $$ = expr_new(ctx->arena, E_LIST, @$);
                                  PtrVec none = {0}; $$ = with_args(ctx, $$, &none); }
    | '[' list ']'              { $$ = expr_new(ctx->arena, E_LIST, @$); $$ = with_args(ctx, $$, &$2); }
    ;

/* Section keywords are ordinary words inside a section: `split train 0.8, test 0.2`. */
section_word
    : MODEL                     { $$ = "model"; }
    | DATA                      { $$ = "data"; }
    | LOSS                      { $$ = "loss"; }
    | TRAIN                     { $$ = "train"; }
    | BASIS                     { $$ = "basis"; }
    ;

args
    : arg                       { $$ = (PtrVec){0}; ptrvec_push(ctx->arena, &$$, $1); }
    | args ',' arg              { $$ = $1; ptrvec_push(ctx->arena, &$$, $3); }
    ;

arg
    : expr                      { $$ = arg_new(ctx, NULL, @1, $1); }
    | IDENT '=' expr            { $$ = arg_new(ctx, $1, @1, $3); }
    ;

list
    : expr                      { $$ = (PtrVec){0}; ptrvec_push(ctx->arena, &$$, arg_new(ctx, NULL, @1, $1)); }
    | list ',' expr             { $$ = $1; ptrvec_push(ctx->arena, &$$, arg_new(ctx, NULL, @3, $3)); }
    ;

%%

/* ---------------------------------------------------------------------------- syntax errors */

/* Bison calls this on a syntax error: "unexpected name 'y', expecting ',' or ')'". The token
 * found is shown with its text. Of the tokens that could come instead, those that start an
 * expression are named together as "an expression", and the operators that may follow any
 * expression are left out (they are never the fix); the rest are listed when there are few. */

static int is_symbol(yysymbol_kind_t k, const char *name) { return strcmp(yysymbol_name(k), name) == 0; }

static int has_symbol(const yysymbol_kind_t *v, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (is_symbol(v[i], name)) return 1;
    return 0;
}

static int starts_expression(yysymbol_kind_t k) {
    static const char *const first[] = {"number", "string", "name", "'('", "'['", "'-'",
                                        "'model'", "'data'", "'loss'", "'train'", "'basis'"};
    for (size_t i = 0; i < sizeof first / sizeof first[0]; i++)
        if (is_symbol(k, first[i])) return 1;
    return 0;
}

static int follows_expression(yysymbol_kind_t k) {
    return is_symbol(k, "'+'") || is_symbol(k, "'-'") || is_symbol(k, "'*'") || is_symbol(k, "'/'") ||
           is_symbol(k, "'('") || is_symbol(k, "'='");
}

/* How a token is named in a message: "a name", "end of line", "')'". */
static const char *token_name(yysymbol_kind_t k) {
    switch (k) {
    case YYSYMBOL_IDENT: return "a name";
    case YYSYMBOL_NUMBER: return "a number";
    case YYSYMBOL_STRING: return "a string";
    case YYSYMBOL_SEP: return "end of line";
    case YYSYMBOL_YYEOF: return "end of file";
    default: break;
    }
    return yysymbol_name(k);   /* "'model'", "')'" */
}

/* The token found, with its text where that helps: "name 'y'", "number '2'", "';'". */
static void describe_found(ParseCtx *ctx, yysymbol_kind_t got, Loc at, char *buf, size_t len) {
    char text[40];
    source_text(ctx->diag->src, at, text, sizeof text);
    switch (got) {
    case YYSYMBOL_IDENT: snprintf(buf, len, "name '%s'", text); break;
    case YYSYMBOL_NUMBER: snprintf(buf, len, "number '%s'", text); break;
    case YYSYMBOL_STRING: snprintf(buf, len, "string %s", text); break;
    case YYSYMBOL_SEP: snprintf(buf, len, "%s", strcmp(text, ";") == 0 ? "';'" : "end of line"); break;
    default: snprintf(buf, len, "%s", token_name(got)); break;
    }
}

/* ", expecting A, B or C" into buf, or "" when there are too many to be useful. */
static void describe_expected(const yypcontext_t *pctx, char *buf, size_t len) {
    enum { MAX_EXPECTED = 32, MAX_LISTED = 4 };
    yysymbol_kind_t exp[MAX_EXPECTED];
    int n = yypcontext_expected_tokens(pctx, exp, MAX_EXPECTED);
    int expr = has_symbol(exp, n, "number") && has_symbol(exp, n, "name") && has_symbol(exp, n, "'('");
    int ops = has_symbol(exp, n, "'+'") && has_symbol(exp, n, "'*'");
    const char *names[MAX_EXPECTED + 1];
    int k = 0;
    if (expr) names[k++] = "an expression";
    for (int i = 0; i < n; i++) {
        if ((expr && starts_expression(exp[i])) || (ops && follows_expression(exp[i]))) continue;
        names[k++] = exp[i] == YYSYMBOL_SEP ? "end of line" : token_name(exp[i]);
        if (k == MAX_LISTED + 1) break;
    }
    buf[0] = 0;
    if (n == 0 || k == 0 || k > MAX_LISTED) return;
    size_t used = 0;
    for (int i = 0; i < k && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i == 0 ? ", expecting " : i == k - 1 ? " or " : ", ",
                                 names[i]);
}

static int yyreport_syntax_error(const yypcontext_t *pctx, void *scanner, ParseCtx *ctx) {
    (void)scanner;
    yysymbol_kind_t got = yypcontext_token(pctx);
    const Loc *at = yypcontext_location(pctx);
    char found[64], expected[256];
    describe_found(ctx, got, *at, found, sizeof found);
    describe_expected(pctx, expected, sizeof expected);

    enum { MAX_TOP = 8 };
    yysymbol_kind_t top[MAX_TOP];
    int n_top = yypcontext_expected_tokens(pctx, top, MAX_TOP);
    if (got == YYSYMBOL_IDENT && has_symbol(top, n_top, "'model'") && !has_symbol(top, n_top, "name")) {
        char text[40];
        diag_error(ctx->diag, *at, "unknown section '%s'; the sections are model, basis, data, loss and train",
                   source_text(ctx->diag->src, *at, text, sizeof text));
        return 0;
    }
    if (got == YYSYMBOL_YYEOF && ctx->braces > 0) {
        diag_error(ctx->diag, *at, "unexpected end of file: a '}' is missing");
        int i = (ctx->braces < PARSE_MAX_OPEN ? ctx->braces : PARSE_MAX_OPEN) - 1;
        diag_note(ctx->diag, ctx->brace_open[i], "this '{' is never closed");
        return 0;
    }
    diag_error(ctx->diag, *at, "syntax error: unexpected %s%s", found, expected);
    /* A bracket left open on an earlier line swallowed the line ends: point at it, and let
     * the next line end close the statement so that parsing can resume there. */
    if (ctx->nest > 0) {
        int i = (ctx->nest < PARSE_MAX_OPEN ? ctx->nest : PARSE_MAX_OPEN) - 1;
        while (i > 0 && ctx->open[i - 1].line < at->line && ctx->open[i].line == ctx->open[i - 1].line) i--;
        if (ctx->open[i].line < at->line) diag_note(ctx->diag, ctx->open[i], "this bracket is never closed");
        ctx->nest = 0;
    }
    return 0;
}

/* parse.h - source -> tokens -> AST: drives the flex lexer and the bison parser.
 *
 * The lexer (grammar/lexer.l) and parser (grammar/parser.y) are reentrant and share one
 * ParseCtx through flex's extra pointer; no globals. Syntax errors are reported through the
 * Diag and parsing goes on after each, so one run shows them all. */
#ifndef DINO_PARSE_H
#define DINO_PARSE_H

#include "ast.h"
#include "diag.h"

enum { PARSE_MAX_DEPTH = 200 }; /* deepest expression nesting accepted */
enum { PARSE_MAX_OPEN = 64 };   /* open brackets remembered for error notes */

typedef struct {
    Arena *arena;
    Diag *diag;
    PtrVec sections;                /* the result, Section * */
    int line, col;                  /* lexer position of the next byte */
    int nest;                       /* open ( and [ : newlines inside them are not statement ends */
    Loc open[PARSE_MAX_OPEN];       /* where the innermost open brackets are */
    int braces;                     /* open { */
    Loc brace_open[PARSE_MAX_OPEN]; /* where the innermost open braces are */
    int depth_reported;             /* nesting-depth error already given */
} ParseCtx;

/* Parses the whole source. Always returns a tree (possibly partial); diag->n_errors says
 * whether it is usable. */
AstFile *parse_source(Arena *a, Diag *d, const Source *src);

#endif

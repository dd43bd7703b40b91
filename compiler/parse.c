/* parse.c - runs the lexer and parser over a Source (see parse.h). */
#include "parse.h"

#include "parser.h"
#include "lexer.h"

AstFile *parse_source(Arena *a, Diag *d, const Source *src) {
    ParseCtx ctx = {.arena = a, .diag = d, .line = 1, .col = 1};
    yyscan_t scanner;
    if (yylex_init_extra(&ctx, &scanner)) {
        diag_error(d, (Loc){0}, "internal error: cannot start the lexer");
        return arena_alloc(a, sizeof(AstFile));
    }
    YY_BUFFER_STATE buf = yy_scan_bytes(src->text, (int)src->len, scanner);
    yyparse(scanner, &ctx);
    yy_delete_buffer(buf, scanner);
    yylex_destroy(scanner);

    AstFile *f = arena_alloc(a, sizeof *f);
    f->sections = (Section **)ctx.sections.items;
    f->n_sections = ctx.sections.n;
    return f;
}

/*
 * pem.c — PEM objects to DER. See pem.h.
 */
#include <string.h>

#include <bearssl.h>

#include "pem.h"
#include "secret.h"

struct walk {
	br_pem_decoder_context pc;
	int (*keep)(const char *name);
	struct pem_obj *objs;
	int max, n;
	int inside;          /* an object has begun and not ended */
	unsigned char *out;
	size_t cap, len;
	int over;            /* kept bytes beyond cap */
	const char *why;
};

static void
sink(void *ctx, const void *p, size_t n)
{
	struct walk *w = ctx;

	if (w->over || n > w->cap - w->len) {
		w->over = 1;
		return;
	}
	memcpy(w->out + w->len, p, n);
	w->len += n;
}

/* Feed n bytes to the decoder; records objects as they begin and end. */
static void
feed(struct walk *w, const unsigned char *p, size_t n)
{
	while (n > 0 && w->why == NULL) {
		size_t k = br_pem_decoder_push(&w->pc, p, n);
		struct pem_obj *o;

		p += k;
		n -= k;
		switch (br_pem_decoder_event(&w->pc)) {
		case BR_PEM_BEGIN_OBJ:
			if (w->n == w->max) {
				w->why = "too many PEM objects";
				return;
			}
			o = &w->objs[w->n];
			memset(o, 0, sizeof *o);
			strncpy(o->name, br_pem_decoder_name(&w->pc), sizeof o->name - 1);
			o->kept = w->keep == NULL || w->keep(o->name);
			o->off = w->len;
			br_pem_decoder_setdest(&w->pc, o->kept ? sink : NULL, w);
			w->inside = 1;
			break;
		case BR_PEM_END_OBJ:
			if (!w->inside)
				break;
			w->objs[w->n].len = w->len - w->objs[w->n].off;
			w->n++;
			w->inside = 0;
			break;
		case BR_PEM_ERROR:
			w->why = "damaged PEM (bad base64, or a broken BEGIN/END line)";
			return;
		default:
			if (k == 0) {
				w->why = "PEM decoder stalled";
				return;
			}
		}
	}
}

/* see pem.h */
int
pem_decode(const void *text, size_t n, int (*keep)(const char *name), struct pem_obj *objs,
    int max, unsigned char *out, size_t cap, const char **why)
{
	const unsigned char *p = text;
	struct walk w;
	size_t i, start = 0;

	memset(&w, 0, sizeof w);
	w.keep = keep;
	w.objs = objs;
	w.max = max;
	w.out = out;
	w.cap = cap;
	br_pem_decoder_init(&w.pc);
	for (i = 0; i + 1 < n && w.why == NULL; i++) {
		if (p[i] == '\r' && p[i + 1] == '\n') {
			feed(&w, p + start, i - start);
			start = i + 1;
		}
	}
	feed(&w, p + start, n - start);
	feed(&w, (const unsigned char *)"\n", 1); /* ends a last line without a newline */
	if (w.why == NULL && w.inside)
		w.why = "truncated: a PEM object has no END line";
	if (w.why == NULL && w.over)
		w.why = "too large";
	secret_wipe(&w.pc, sizeof w.pc); /* its buffer held decoded bytes */
	*why = w.why;
	return w.why == NULL ? w.n : -1;
}

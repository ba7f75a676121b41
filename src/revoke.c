/*
 * revoke.c — admitted connections judged again. See revoke.h.
 */
#include <string.h>

#include "cred.h"
#include "revoke.h"
#include "secret.h"

/* see revoke.h */
void
revoke_prepare(struct revoke *r, const struct relay *rl)
{
	memset(r, 0, sizeof *r);
	r->pol.targets = &rl->policy;
	r->pol.udp_ports = rl->cfg->allowed_udp_ports; /* a UDP association's port */
	r->pol.n_udp_ports = (size_t)rl->cfg->n_allowed_udp_ports;
	r->pol.epoch = rl->cfg->token_epoch;
	r->pol.basic = rl->users != NULL;
	r->pol.user_fps = r->fps;
	r->pol.n_user_fps = cred_user_fps(rl->users, r->fps, AUTH_USERS_MAX);
	r->pol.now = rl->now;
}

/* see revoke.h */
const char *
revoke_judge(const struct revoke *r, const struct conn *c)
{
	struct admit_tunnel t;

	/* Admitted: a tunnel's state (being dialed or open) on a proxy listener, with a
	 * tunnel's kind; a refused request's answer (RESPOND, CLOSING) is left alone. */
	if (c->state < CS_RESOLVE || c->state > CS_TUNNEL || c->kind == CONN_ADMIN ||
	    (c->req_kind != ADMIT_CONNECT && c->req_kind != ADMIT_FORWARD &&
	    c->req_kind != ADMIT_TUNNEL && c->req_kind != ADMIT_UDP))
		return NULL;
	memset(&t, 0, sizeof t);
	t.kind = (enum admit_kind)c->req_kind;
	t.cred_kind = c->cred_kind;
	t.epoch = c->cred_epoch;
	t.user_fp = c->cred_fp;
	t.target = &c->target;
	return admit_recheck(&t, &r->pol);
}

/* see revoke.h */
void
revoke_done(struct revoke *r)
{
	secret_wipe(r->fps, sizeof r->fps);
}

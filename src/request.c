/*
 * request.c — routing, admission in effect, the relay's own paths. See request.h.
 */
#include <stdio.h>
#include <string.h>

#include "admit.h"
#include "cred.h"
#include "dial.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "respond.h"
#include "secret.h"
#include "token.h"
#include "tunnel.h"

/* The path of an origin-form target without its query. */
static struct http_span
path_of(const char *h, struct http_span path)
{
	const char *q = memchr(h + path.off, '?', path.len);

	if (q != NULL)
		path.len = (uint32_t)(q - (h + path.off));
	return path;
}

/* GET /readyz: 200, or 503 with the reason. */
static void
readyz(struct conn *c, int keep_alive)
{
	const char *reason;
	char body[160];

	if (relay_ready(c->rl, &reason)) {
		respond_json(c, 200, "{\"status\":\"ready\"}", keep_alive);
	} else {
		snprintf(body, sizeof body, "{\"status\":\"not_ready\",\"reason\":\"%s\"}", reason);
		respond_json(c, 503, body, keep_alive);
	}
}

/* The admin listener: GET /metrics, /healthz, /readyz and /sessions, nothing else — no
 * CONNECT, no tokens, no tunnels, no credentials. Keep-alive unless the client closes. */
static void
handle_admin(struct conn *c)
{
	const char *h = c->head;
	const struct http_request *r = &c->req;
	struct http_span path = path_of(h, r->target);
	int ka = r->minor == 1 && !http_list_has(h, r, HTTP_H_CONNECTION, "close");

	if (!http_span_is(h, r->method, "GET"))
		respond_error(c, 405, "method_not_allowed", "the admin listener answers GET only",
		    "Allow: GET\r\n");
	else if (http_span_is(h, path, "/metrics"))
		respond_metrics(c, ka);
	else if (http_span_is(h, path, "/healthz"))
		respond_json(c, 200, "{\"status\":\"ok\"}", ka);
	else if (http_span_is(h, path, "/readyz"))
		readyz(c, ka);
	else if (http_span_is(h, path, "/sessions"))
		respond_sessions(c, ka);
	else
		respond_error(c, 404, "not_found",
		    "the admin listener serves /metrics, /healthz, /readyz, /sessions", NULL);
}

/* The relay's own paths on the proxy listeners: /healthz, /readyz; else 404 or 405. */
static void
handle_local(struct conn *c, const struct http_target *t)
{
	const char *h = c->head;
	const struct http_request *r = &c->req;
	struct http_span path = path_of(h, t->path);

	if (http_span_is(h, r->method, "GET") && http_span_is(h, path, "/healthz"))
		respond_json(c, 200, "{\"status\":\"ok\"}", 0);
	else if (http_span_is(h, r->method, "GET") && http_span_is(h, path, "/readyz"))
		readyz(c, 0);
	else if (http_span_is(h, r->method, "GET") || http_span_is(h, r->method, "HEAD") ||
	    http_span_is(h, r->method, "POST"))
		respond_error(c, 404, "not_found", "no such path", NULL);
	else
		respond_error(c, 405, "method_not_allowed", "method not allowed",
		    "Allow: GET, POST, CONNECT\r\n");
}

/* POST /v1/token, admitted: the grant's sub is in c->who; an access token out (docs/protocol.md).
 * Keep-alive unless the client closes. */
static void
issue_token(struct conn *c)
{
	const struct relay *rl = c->rl;
	char token[TOKEN_ACCESS_MAX], body[TOKEN_ACCESS_MAX + 128];
	struct log_rec lr;

	if (token_issue(rl->cfg, c->who, (int64_t)rl->now, token, sizeof token) == 0) {
		respond_error(c, 500, "internal", "cannot issue a token", NULL);
		return;
	}
	snprintf(body, sizeof body,
	    "{\"access_token\":\"%s\",\"token_type\":\"Bearer\",\"expires_in\":%llu}",
	    token, (unsigned long long)rl->cfg->token_duration);
	secret_wipe(token, sizeof token);
	metrics_token_issued();
	if (log_begin(&lr, LOG_INFO, "token.issue")) {
		log_str(&lr, "client", c->peer);
		log_str(&lr, "sub", c->who);
		log_int(&lr, "expires_in", (int64_t)rl->cfg->token_duration);
		log_end(&lr);
	}
	respond_json(c, 200, body, !http_list_has(c->head, &c->req, HTTP_H_CONNECTION, "close"));
	secret_wipe(body, sizeof body);
}

/* A refusal from admission: what it says is logged (auth.fail, counted or not;
 * target.forbidden — the one place that line is written), then answered. */
static void
refuse(struct conn *c, const struct admit_verdict *v)
{
	struct log_rec r;

	if (v->log == ADMIT_LOG_AUTH) {
		cred_log_fail(c, v->reason, v->why);
		if (v->counted)
			cred_count_failure(c);
	} else if (v->log == ADMIT_LOG_TARGET && log_begin(&r, LOG_WARN, "target.forbidden")) {
		log_str(&r, "client", c->peer);
		if (v->authed)
			log_str(&r, "user", c->who);
		if (v->text[0]) {
			log_str(&r, "target", v->text); /* as sent: it did not parse */
		} else {
			log_str(&r, "target", v->target.host.name);
			log_int(&r, "port", v->target.port);
		}
		log_str(&r, "reason", v->reason);
		log_end(&r);
	}
	respond_error(c, v->status, v->code, v->message, v->extra);
}

/* What a head on a proxy listener asks for (admission judges it): CONNECT; a WebSocket
 * tunnel, a UDP association or POST /v1/token among the relay's paths; another
 * origin-form path is the relay's own; anything else is treated as absolute-form. */
static enum admit_kind
route(const struct conn *c, const struct http_target *t, int split_rc)
{
	const char *h = c->head;
	struct http_span path;

	if (http_span_is(h, c->req.method, "CONNECT"))
		return ADMIT_CONNECT;
	if (split_rc != HTTP_OK || t->form != HTTP_FORM_ORIGIN)
		return ADMIT_FORWARD;
	path = path_of(h, t->path);
	if (http_span_is(h, path, "/v1/tunnel"))
		return ADMIT_TUNNEL;
	if (http_span_is(h, path, "/v1/udp"))
		return ADMIT_UDP;
	if (http_span_is(h, c->req.method, "POST") && http_span_is(h, path, "/v1/token"))
		return ADMIT_TOKEN;
	return ADMIT_LOCAL;
}

/* see request.h */
void
request_handle(struct conn *c)
{
	const struct relay *rl = c->rl;
	struct http_target t;
	struct admit_req rq;
	struct admit_cred cr;
	struct admit_policy pol;
	struct admit_verdict v;

	if (c->kind == CONN_ADMIN) {
		handle_admin(c);
		return;
	}
	memset(&rq, 0, sizeof rq);
	rq.buf = c->head;
	rq.req = &c->req;
	rq.t = &t;
	rq.split_rc = http_target_split(c->head, &c->req, &t);
	rq.kind = route(c, &t, rq.split_rc);
	rq.body_len = c->body_len;
	rq.over_limit = c->over_limit;
	rq.draining = rl->draining;
	rq.banned = rq.kind != ADMIT_LOCAL && cred_banned(c);
	cred_check(c, rq.kind, &cr);
	memset(&pol, 0, sizeof pol);
	pol.targets = &rl->policy;
	pol.basic = rl->users != NULL;
	pol.now = rl->now;
	pol.udp_ports = rl->cfg->allowed_udp_ports;
	pol.n_udp_ports = (size_t)rl->cfg->n_allowed_udp_ports;
	if (admit_check(&rq, &cr, &pol, &v) != 0) {
		refuse(c, &v);
		return;
	}
	switch (rq.kind) {
	case ADMIT_LOCAL:
		handle_local(c, &t);
		return;
	case ADMIT_TOKEN:
		issue_token(c);
		return;
	case ADMIT_TUNNEL:
		c->websocket = 1;
		break;
	case ADMIT_UDP:
		c->websocket = 1;
		c->udp = 1;
		break;
	case ADMIT_FORWARD:
		c->forward = 1;
		if (tunnel_forward_head(c, &t) != ERR_OK) {
			respond_error(c, 431, "bad_request", "request head too large to forward", NULL);
			return;
		}
		break;
	default:
		break;
	}
	c->target = v.target;
	dial_start(c);
}

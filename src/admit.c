/*
 * admit.c — the admission rules, in order. See admit.h.
 */
#include <string.h>

#include "admit.h"
#include "body.h"
#include "err.h"
#include "ws.h"

static const char proxy_challenge[] = "Proxy-Authenticate: Bearer realm=\"relaypro\"\r\n";
static const char proxy_challenge_basic[] = "Proxy-Authenticate: Bearer realm=\"relaypro\"\r\n"
    "Proxy-Authenticate: Basic realm=\"relaypro\"\r\n";
static const char www_challenge[] = "WWW-Authenticate: Bearer realm=\"relaypro\"\r\n";

/* see admit.h */
int
admit_cred_header(enum admit_kind kind)
{
	switch (kind) {
	case ADMIT_CONNECT: case ADMIT_FORWARD:
		return HTTP_H_PROXY_AUTHORIZATION;
	case ADMIT_TUNNEL: case ADMIT_UDP: case ADMIT_TOKEN:
		return HTTP_H_AUTHORIZATION;
	default:
		return -1;
	}
}

/* see admit.h */
unsigned
admit_schemes(enum admit_kind kind, int basic)
{
	switch (kind) {
	case ADMIT_CONNECT: case ADMIT_FORWARD:
		return ADMIT_SCHEME_BEARER | (basic ? ADMIT_SCHEME_BASIC : 0u);
	case ADMIT_TUNNEL: case ADMIT_UDP: case ADMIT_TOKEN:
		return ADMIT_SCHEME_BEARER;
	default:
		return 0;
	}
}

/* see admit.h */
int
admit_wants_grant(enum admit_kind kind)
{
	return kind == ADMIT_TOKEN;
}

static int
refuse(struct admit_verdict *v, int status, const char *code, const char *message)
{
	v->status = status;
	v->code = code;
	v->message = message;
	return status;
}

/* A target that did not parse as a name or canonical literal (rule 2): 403 for numeric
 * spellings of an address, logged with the text as sent; 400 otherwise. */
static int
refuse_syntax(struct admit_verdict *v, int rc, const char *text, size_t len)
{
	if (rc == TARGET_E_NUMERIC) {
		/* 167772165, 012.0.0.5, 0x0a.0.0.5, 10.5: other spellings of an address never
		 * match a configured one, so they are refused as not allowed. */
		if (len >= sizeof v->text)
			len = sizeof v->text - 1;
		memcpy(v->text, text, len);
		v->text[len] = 0;
		v->log = ADMIT_LOG_TARGET;
		v->reason = target_str(rc);
		return refuse(v, 403, "forbidden_target", target_str(rc));
	}
	return refuse(v, 400, "bad_request", target_str(rc));
}

/* Rule 3: the WebSocket handshake (RFC 6455 §4.2.1) and its ?target=. */
static int
websocket(const struct admit_req *rq, struct admit_verdict *v)
{
	const char *h = rq->buf, *q;
	const struct http_request *r = rq->req;
	const struct http_span *path = &rq->t->path;
	char tv[ADMIT_TEXT_MAX], accept[WS_ACCEPT_LEN];
	size_t tlen = 0;
	int rc;

	if (!http_span_is(h, r->method, "GET") || r->minor != 1)
		return refuse(v, 400, "bad_request", "the WebSocket handshake is GET with HTTP/1.1");
	if (!http_list_has(h, r, HTTP_H_UPGRADE, "websocket") ||
	    !http_list_has(h, r, HTTP_H_CONNECTION, "upgrade"))
		return refuse(v, 400, "bad_request", "needs Upgrade: websocket and Connection: Upgrade");
	if (!(r->have & (1u << HTTP_H_SEC_WEBSOCKET_VERSION)))
		return refuse(v, 400, "bad_request", "missing Sec-WebSocket-Version");
	if (!http_span_is(h, r->val[HTTP_H_SEC_WEBSOCKET_VERSION], "13")) {
		v->extra = "Sec-WebSocket-Version: 13\r\n";
		return refuse(v, 426, "bad_request", "only WebSocket version 13 is supported");
	}
	if (!(r->have & (1u << HTTP_H_SEC_WEBSOCKET_KEY)) ||
	    ws_accept_key(h + r->val[HTTP_H_SEC_WEBSOCKET_KEY].off,
	    r->val[HTTP_H_SEC_WEBSOCKET_KEY].len, accept) != ERR_OK)
		return refuse(v, 400, "bad_request", "missing or malformed Sec-WebSocket-Key");
	if (rq->body_len)
		return refuse(v, 400, "bad_request", "the WebSocket handshake has no body");
	q = memchr(h + path->off, '?', path->len);
	rc = q ? ws_query_target(q + 1, (size_t)(h + path->off + path->len - (q + 1)), tv,
	    sizeof tv, &tlen) : ERR_NOTFOUND;
	if (rc != ERR_OK)
		return refuse(v, 400, "bad_request", rc == ERR_DUP ? "more than one target parameter" :
		    rc == ERR_NOSPACE ? "target too long" : "missing ?target=host:port");
	rc = target_parse_authority(tv, tlen, 0, &v->target);
	if (rc != TARGET_OK)
		return refuse_syntax(v, rc, tv, tlen);
	return 0;
}

/* Rule 6: the credential. */
static int
credential(const struct admit_req *rq, const struct admit_cred *cr,
    const struct admit_policy *pol, struct admit_verdict *v)
{
	int proxy = rq->kind == ADMIT_CONNECT || rq->kind == ADMIT_FORWARD;
	int status = proxy ? 407 : 401;

	v->extra = !proxy ? www_challenge : pol->basic ? proxy_challenge_basic : proxy_challenge;
	v->log = ADMIT_LOG_AUTH;
	switch (cr->state) {
	case ADMIT_CRED_OK:
		v->extra = NULL;
		v->log = ADMIT_LOG_NONE;
		v->authed = 1;
		return 0;
	case ADMIT_CRED_BAD:
		v->counted = 1;
		v->reason = cr->reason ? cr->reason : cr->code;
		v->why = cr->why;
		if (cr->basic)
			return refuse(v, status, "auth_failed", "wrong user name or password");
		return refuse(v, status, cr->code, rq->kind == ADMIT_TOKEN ? "grant not accepted" :
		    "access token not accepted");
	case ADMIT_CRED_SCHEME:
		if (rq->kind != ADMIT_TOKEN) {
			v->counted = 1;
			v->reason = "unsupported scheme";
			return refuse(v, status, "auth_required", proxy ?
			    "use Bearer (or Basic with a password file)" :
			    "use Authorization: Bearer <access token>");
		}
		break; /* POST /v1/token: another scheme is no grant, as below */
	default:
		break;
	}
	v->reason = "missing"; /* not counted: every client's first try */
	return refuse(v, status, "auth_required", proxy ? "proxy authentication required" :
	    rq->kind == ADMIT_TOKEN ? "grant not accepted" :
	    "Authorization: Bearer <access token> required");
}

/* Rule 7 for a target of this kind: 0, or the log's reason (static text) when the
 * policy refuses it (*udp set when it is the UDP port list that does). */
static const char *
target_refused(enum admit_kind kind, const struct target_addr *a,
    const struct target_policy *targets, const uint16_t *udp_ports, size_t n_udp_ports,
    time_t now, int *udp)
{
	int rc = target_check(targets, a->host.name, a->host.len, a->port, now);
	size_t i;

	*udp = 0;
	if (kind == ADMIT_UDP && rc == TARGET_FORBIDDEN_PORT)
		rc = TARGET_OK; /* the host is allowed; UDP ports have their own list */
	if (kind == ADMIT_UDP && rc == TARGET_OK) {
		for (i = 0; i < n_udp_ports && udp_ports[i] != a->port; i++)
			;
		if (i == n_udp_ports) {
			*udp = 1;
			return "target port not in allowedUdpPorts";
		}
	}
	return rc == TARGET_OK ? NULL : target_str(rc);
}

/* Rule 7: the target against the policy. */
static int
policy(const struct admit_req *rq, const struct admit_policy *pol, struct admit_verdict *v)
{
	int udp;
	const char *why = target_refused(rq->kind, &v->target, pol->targets, pol->udp_ports,
	    pol->n_udp_ports, pol->now, &udp);

	if (why == NULL)
		return 0;
	v->log = ADMIT_LOG_TARGET;
	v->reason = why;
	return refuse(v, 403, "forbidden_target", udp ? "target port not allowed for UDP" : why);
}

/* see admit.h */
const char *
admit_recheck(const struct admit_tunnel *t, const struct admit_recheck_policy *p)
{
	size_t lo = 0, hi = p->n_user_fps, mid;
	const char *why;
	int udp;

	switch (t->cred_kind) {
	case ADMIT_CRED_KIND_BEARER:
		if (t->epoch != p->epoch)
			return t->epoch < p->epoch ? "the epoch was raised: tokens of the older one are "
			    "revoked" : "the epoch was lowered: tokens of a later one are not accepted";
		break;
	case ADMIT_CRED_KIND_BASIC:
		if (!p->basic)
			return "the password file is no longer set";
		while (lo < hi) { /* user_fps is sorted */
			mid = lo + (hi - lo) / 2;
			if (p->user_fps[mid] < t->user_fp)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == p->n_user_fps || p->user_fps[lo] != t->user_fp)
			return "the user is no longer in the password file with this password";
		break;
	default:
		return "no credential admitted it";
	}
	why = target_refused(t->kind, t->target, p->targets, p->udp_ports, p->n_udp_ports, p->now,
	    &udp);
	return why;
}

/* see admit.h */
int
admit_check(const struct admit_req *rq, const struct admit_cred *cr,
    const struct admit_policy *pol, struct admit_verdict *v)
{
	const struct http_request *r = rq->req;
	int tunnel = rq->kind == ADMIT_CONNECT || rq->kind == ADMIT_FORWARD ||
	    rq->kind == ADMIT_TUNNEL || rq->kind == ADMIT_UDP;
	struct body_state body;

	memset(v, 0, sizeof *v);
	if (rq->over_limit)
		return refuse(v, 503, "too_many_connections", "the relay is at its connection limit");
	if (rq->kind == ADMIT_LOCAL)
		return 0;
	if (rq->split_rc == HTTP_HTTPS)
		return refuse(v, 400, "bad_request", "https:// targets need CONNECT");
	if (rq->split_rc != HTTP_OK)
		return refuse_syntax(v, rq->split_rc, rq->buf + r->target.off, r->target.len);
	switch (rq->kind) {
	case ADMIT_CONNECT:
		if (rq->t->form != HTTP_FORM_AUTHORITY)
			return refuse(v, 400, "bad_request", "CONNECT needs host:port");
		v->target = rq->t->addr;
		break;
	case ADMIT_FORWARD:
		if (rq->t->form != HTTP_FORM_ABSOLUTE)
			return refuse(v, 400, "bad_request", "request target does not fit the method");
		if (body_start(&body, rq->buf, r) != ERR_OK)
			return refuse(v, 400, "bad_request", "Transfer-Encoding must end in chunked");
		v->target = rq->t->addr;
		break;
	case ADMIT_TUNNEL: case ADMIT_UDP:
		if (rq->t->form != HTTP_FORM_ORIGIN)
			return refuse(v, 400, "bad_request", "request target does not fit the method");
		if (websocket(rq, v))
			return v->status;
		break;
	default: /* ADMIT_TOKEN */
		break;
	}
	if (tunnel && rq->draining)
		return refuse(v, 503, "shutting_down", "the relay is stopping");
	if (rq->banned)
		return refuse(v, 429, "rate_limited", "too many failed authentications");
	if (credential(rq, cr, pol, v))
		return v->status;
	if (tunnel && policy(rq, pol, v))
		return v->status;
	return 0;
}

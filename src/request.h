/*
 * request.h — what a parsed request head becomes: routed, admitted, then answered by the
 * relay itself or handed to dial.c for a tunnel.
 *
 * Owns: routing a head on each listener (the admin listener's four paths: /metrics,
 * /healthz, /readyz, /sessions; on the proxy listeners CONNECT, absolute-form, /v1/tunnel,
 * /v1/udp, POST /v1/token, /healthz, /readyz), putting
 * admission's verdict into effect (the refusal's log lines and limiter count, then the
 * answer), issuing access tokens. Must not touch: the rules themselves (admit.c), the
 * bytes of the head (front.c), sockets.
 */
#ifndef RELAYPRO_REQUEST_H
#define RELAYPRO_REQUEST_H

#include "conn.h"

/* A complete head (and body) is in head[]: route, admit, act. Ends in RESPOND, CLOSING,
 * RESOLVE or CONNECT (dial.c), or DEAD. */
void request_handle(struct conn *c);

#endif

/*
 * walk.c — the one driver of the connection state machine. See walk.h.
 */
#include <poll.h>
#include <unistd.h>

#include "dial.h"
#include "front.h"
#include "hop.h"
#include "request.h"
#include "respond.h"
#include "tunnel.h"
#include "walk.h"

/* Do everything that can be done now without blocking: rounds of the client's I/O and
 * the state's step while anything moves (at most 16, so one busy connection cannot hold
 * the loop). */
static void
run(struct conn *c)
{
	int rounds, progress, rc;

	if (c->state == CS_PPHDR) {
		front_pphdr(c);
		if (c->state != CS_HEAD)
			return; /* closed, or the header is not whole yet */
	}
	for (rounds = 0; rounds < 16 && !conn_dead(c); rounds++) {
		rc = front_io(c);
		if (rc < 0) {
			conn_close(c, c->state == CS_CLOSING ? "closed" : "client i/o error");
			return;
		}
		progress = rc;
		switch (c->state) {
		case CS_HEAD:
			if (front_read_head(c))
				request_handle(c);
			if (c->state == CS_HEAD || conn_dead(c))
				return; /* needs more bytes, or closed */
			progress = 1;
			break;
		case CS_TUNNEL:
			progress |= tunnel_step(c, rc);
			break;
		case CS_RESPOND:
			progress |= respond_more(c); /* a streamed answer: its next rows */
			if (hop_wempty(&c->hop.front)) {
				if (c->keep_alive)
					front_next_request(c);
				else
					respond_close(c);
				progress = 1;
			}
			break;
		case CS_CLOSING:
			progress |= respond_closing(c);
			break;
		default: /* RESOLVE, CONNECT, PROXY wait for the upstream; PPHDR; DEAD */
			return;
		}
		if (!progress)
			return;
	}
}

/* see walk.h */
void
walk_events(struct conn *c, short crev, short urev)
{
	/* A socket reported readable (or hung up, or in error) is read again (hop.h, "Reads"). */
	if (crev & (POLLIN | POLLPRI | POLLHUP | POLLERR))
		hop_readable(&c->hop.front);
	if (urev & (POLLIN | POLLPRI | POLLHUP | POLLERR))
		hop_readable(&c->hop.up);
	if (urev && (c->state == CS_CONNECT || c->state == CS_PROXY))
		dial_event(c);
	run(c);
}

/* see walk.h */
void
walk_interest(const struct conn *c, int *cfd, short *cev, int *ufd, short *uev)
{
	const struct hop_end *f = &c->hop.front, *u = &c->hop.up;

	*cfd = f->fd;
	*ufd = u->fd;
	*uev = 0;
	if (c->state == CS_PPHDR) {
		*cev = POLLIN; /* the raw socket: BearSSL sees nothing before the header is read */
		return;
	}
	/* The client is read while a head, tunnel bytes or (CLOSING) the discarded rest can
	 * come — also while the upstream is being reached (RESOLVE, CONNECT, PROXY): what the
	 * client sends then waits in its end's buffer (one record, or the plain buffer: the
	 * end stops asking when full) for the tunnel, and the interest stays the same from
	 * the head to the tunnel (no poll-set change per tunnel). What is queued for it is
	 * always written. */
	*cev = hop_interest(f, c->state != CS_RESPOND, 0);
	if (u->fd < 0)
		return;
	if (c->state == CS_CONNECT)
		*uev = POLLOUT;
	else if (c->state == CS_PROXY)
		*uev = hop_interest(u, 1, !c->preq_done);
	else if (c->state == CS_TUNNEL)
		*uev = hop_up_interest(&c->hop);
}

/* see walk.h */
int
walk_tick(struct conn *c, int64_t now)
{
	if (c->state == CS_TUNNEL) {
		if (now - c->last_io < (int64_t)c->rl->cfg->idle_timeout * 1000)
			return 0;
		conn_close(c, "idle timeout");
		return 1;
	}
	if (now < c->deadline)
		return 0;
	switch (c->state) {
	case CS_HEAD:
		conn_close(c, "header timeout");
		break;
	case CS_PPHDR:
		front_pphdr_timeout(c);
		break;
	case CS_RESOLVE:
	case CS_CONNECT:
	case CS_PROXY:
		dial_timeout(c);
		run(c);
		break;
	default:
		conn_close(c, "response timeout");
	}
	return 1;
}

/* see walk.h */
void
walk_resolved(struct conn *c)
{
	dial_resolved(c);
}

/* see walk.h */
void
walk_shutdown(struct conn *c)
{
	if ((c->state == CS_HEAD && c->head_len == 0) || c->state == CS_PPHDR)
		conn_close(c, "shutting down");
}

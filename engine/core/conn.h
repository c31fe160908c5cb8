/*
 * conn: one plan server's connection, owned by the run (session.c makes
 * them; event.c reads their clients to scrub secrets from what is printed).
 */
#ifndef MM_CONN_H
#define MM_CONN_H

#include <stdint.h>

#include "http.h"
#include "mm.h"
#include "plan.h"

struct run;

struct server_conn {
	const struct plan_server *sv;
	struct http_client *client;
	int authed;
	int logged_in;    /* a password login made a session we should log out of */
	int64_t mfa_step; /* TOTP time step of our last accepted code; 0: none yet */
	struct mm_user me;
	char version[32];
	struct run *run;
};

#endif

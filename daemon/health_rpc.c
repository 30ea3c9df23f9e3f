/* health_rpc.c - grpc.health.v1.Health: Check, and Watch, which sends the
 * status once and stays open until the client leaves or the daemon
 * stops (a daemon that serves at all serves every service). */
#include "daemon/rpc.h"

#include <health.pb-c.h>
#include <string.h>

#define HEALTH(m)                                                                                  \
	{                                                                                          \
		"/grpc.health.v1.Health/" m, NULL                                                  \
	}

static const char *const services[] = {
    "snix.castore.v1.BlobService",
    "snix.castore.v1.DirectoryService",
    "snix.store.v1.PathInfoService",
    "tvix.castore.v1.BlobService",
    "tvix.castore.v1.DirectoryService",
    "tvix.store.v1.PathInfoService",
    "grpc.health.v1.Health",
    NULL,
};

bool rpc_serves(const char *service, size_t len)
{
	if (len == 0)
		return true;
	for (size_t i = 0; services[i]; i++)
		if (strlen(services[i]) == len && !memcmp(services[i], service, len))
			return true;
	return false;
}

/* 1 if served, 0 if not, or an error. */
static int asked_service(struct rpc *r, const uint8_t *buf, size_t len)
{
	Grpc__Health__V1__HealthCheckRequest *rq =
	    grpc__health__v1__health_check_request__unpack(NULL, len, buf);
	int served;

	if (!rq)
		return rpc_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "malformed HealthCheckRequest");
	served = rpc_serves(rq->service, strlen(rq->service));
	grpc__health__v1__health_check_request__free_unpacked(rq, NULL);
	return served;
}

static int check_request(struct rpc *r, const uint8_t *buf, size_t len)
{
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	int rc = asked_service(r, buf, len);

	if (rc == 0)
		return rpc_fail(r, GRPC_STATUS_NOT_FOUND, "unknown service");
	if (rc < 0)
		return rc;
	resp.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	return rpc_respond(r, &resp);
}

struct watch_state {
	bool sent;
	bool served;
};

static int watch_request(struct rpc *r, const uint8_t *buf, size_t len)
{
	struct watch_state *s = r->state;
	int rc = asked_service(r, buf, len);

	s->served = rc > 0;
	return rc < 0 ? rc : 0;
}

static int watch_next(struct rpc *r, struct rpc_msg *out)
{
	struct watch_state *s = r->state;
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	int rc;

	if (s->sent)
		return RPC_WAIT;
	resp.status =
	    s->served ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
		      : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
	rc = rpc_pack(&resp, out);
	s->sent = rc == 0;
	return rc < 0 ? rc : RPC_MORE;
}

const struct rpc_method rpc_health_methods[] = {
    {.paths = HEALTH("Check"), .shape = RPC_UNARY, .request = check_request},
    {.paths = HEALTH("Watch"),
     .shape = RPC_SERVER_STREAM,
     .state_size = sizeof(struct watch_state),
     .request = watch_request,
     .next = watch_next},
    {.shape = RPC_UNARY},
};

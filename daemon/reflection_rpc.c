/* reflection_rpc.c - gRPC server reflection (grpc.reflection.v1 and
 * v1alpha, whose messages are the same), so grpcurl and friends can list
 * and describe the services without the .proto files. The answers are the
 * FileDescriptorProtos of proto/ that the build compiled in
 * (storefs_rpc_descriptors: a FileDescriptorSet, CMakeLists.txt).
 *
 * The set is read with a few lines of protobuf walking rather than code
 * generated from descriptor.proto: only names are needed (a file's name,
 * package, dependencies and top-level messages, enums and services). */
#include "daemon/rpc.h"

#include <reflection.pb-c.h>
#include <stdlib.h>
#include <string.h>

extern const unsigned char storefs_rpc_descriptors[];
extern const size_t storefs_rpc_descriptors_len;

#define REFLECTION(pkg) "/grpc.reflection." pkg ".ServerReflection/ServerReflectionInfo"
#define MAX_FILES	16

/* The services the descriptors describe (the tvix names are the same
 * services under other paths, with no descriptors of their own). */
static const char *const described[] = {
    "snix.castore.v1.BlobService",	   "snix.castore.v1.DirectoryService",
    "snix.store.v1.PathInfoService",	   "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
};

/* --- reading protobuf --- */

struct pb {
	const uint8_t *p, *end;
};

static bool varint(struct pb *b, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; b->p < b->end && shift < 64; shift += 7) {
		uint8_t x = *b->p++;

		*v |= (uint64_t)(x & 0x7f) << shift;
		if (!(x & 0x80))
			return true;
	}
	return false;
}

/* The next field: its number, and for a length-delimited one its bytes. */
static bool field(struct pb *b, uint32_t *num, struct pb *val)
{
	uint64_t key, v;

	if (b->p >= b->end || !varint(b, &key))
		return false;
	*num = (uint32_t)(key >> 3);
	*val = (struct pb){NULL, NULL};
	switch (key & 7) {
	case 0:
		return varint(b, &v);
	case 1:
		b->p += 8;
		return b->p <= b->end;
	case 5:
		b->p += 4;
		return b->p <= b->end;
	case 2:
		if (!varint(b, &v) || v > (uint64_t)(b->end - b->p))
			return false;
		*val = (struct pb){b->p, b->p + v};
		b->p += v;
		return true;
	default:
		return false;
	}
}

static bool pb_eq(struct pb v, const char *s, size_t len)
{
	return (size_t)(v.end - v.p) == len && !memcmp(v.p, s, len);
}

/* The string field `num` of message `m` (the first one). */
static struct pb pb_string(struct pb m, uint32_t num)
{
	struct pb val;
	uint32_t n;

	while (field(&m, &n, &val))
		if (n == num && val.p)
			return val;
	return (struct pb){NULL, NULL};
}

/* --- the files --- */

/* Every FileDescriptorProto of the set, in order (dependencies first, as
 * protoc writes them). */
static size_t files(struct pb *out)
{
	struct pb set = {storefs_rpc_descriptors,
			 storefs_rpc_descriptors + storefs_rpc_descriptors_len};
	struct pb val;
	uint32_t num;
	size_t n = 0;

	while (n < MAX_FILES && field(&set, &num, &val))
		if (num == 1 && val.p)
			out[n++] = val;
	return n;
}

/* Whether file `f` defines `symbol` or something inside it: "pkg.Top" or
 * "pkg.Top.Member", Top a message (4), enum (5) or service (6). */
static bool defines(struct pb f, const char *symbol)
{
	struct pb pkg = pb_string(f, 2), val;
	size_t plen = (size_t)(pkg.end - pkg.p), slen = strlen(symbol);
	const char *top;
	uint32_t num;

	if (!pkg.p || slen <= plen || memcmp(symbol, pkg.p, plen) || symbol[plen] != '.')
		return false;
	top = symbol + plen + 1;
	while (field(&f, &num, &val)) {
		if ((num == 4 || num == 5 || num == 6) && val.p) {
			struct pb name = pb_string(val, 1);
			size_t nlen = (size_t)(name.end - name.p);

			if (name.p && !strncmp(top, (const char *)name.p, nlen) &&
			    (top[nlen] == '\0' || top[nlen] == '.'))
				return true;
		}
	}
	return false;
}

/* Marks file `i` and, first, what it depends on (field 3, by name). */
static void with_deps(const struct pb *all, size_t n, size_t i, bool *want)
{
	struct pb f = all[i], val;
	uint32_t num;

	if (want[i])
		return;
	want[i] = true;
	while (field(&f, &num, &val)) {
		if (num != 3 || !val.p)
			continue;
		for (size_t j = 0; j < n; j++) {
			struct pb name = pb_string(all[j], 1);

			if (name.p && pb_eq(val, (const char *)name.p, (size_t)(name.end - name.p)))
				with_deps(all, n, j, want);
		}
	}
}

/* --- answers --- */

static int answer(Grpc__Reflection__V1__ServerReflectionResponse *resp, struct rpc_msg *out)
{
	return rpc_pack(resp, out);
}

static int answer_error(Grpc__Reflection__V1__ServerReflectionResponse *resp, int code,
			const char *msg, struct rpc_msg *out)
{
	Grpc__Reflection__V1__ErrorResponse err = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;

	err.error_code = code;
	err.error_message = (char *)msg;
	resp->message_response_case =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
	resp->error_response = &err;
	return answer(resp, out);
}

static int answer_files(Grpc__Reflection__V1__ServerReflectionResponse *resp, const char *by_name,
			const char *symbol, struct rpc_msg *out)
{
	Grpc__Reflection__V1__FileDescriptorResponse fr =
	    GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
	ProtobufCBinaryData bins[MAX_FILES];
	struct pb all[MAX_FILES];
	bool want[MAX_FILES] = {false};
	size_t n = files(all), found = n;

	for (size_t i = 0; i < n && found == n; i++) {
		struct pb name = pb_string(all[i], 1);

		if (by_name ? pb_eq(name, by_name, strlen(by_name)) : defines(all[i], symbol))
			found = i;
	}
	if (found == n)
		return answer_error(resp, GRPC_STATUS_NOT_FOUND,
				    by_name ? "no such file" : "no such symbol", out);
	/* The file asked for first, then what it needs. */
	with_deps(all, n, found, want);
	bins[fr.n_file_descriptor_proto++] =
	    (ProtobufCBinaryData){(size_t)(all[found].end - all[found].p), (uint8_t *)all[found].p};
	for (size_t i = 0; i < n; i++)
		if (want[i] && i != found)
			bins[fr.n_file_descriptor_proto++] = (ProtobufCBinaryData){
			    (size_t)(all[i].end - all[i].p), (uint8_t *)all[i].p};
	fr.file_descriptor_proto = bins;
	resp->message_response_case =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
	resp->file_descriptor_response = &fr;
	return answer(resp, out);
}

static int answer_services(Grpc__Reflection__V1__ServerReflectionResponse *resp,
			   struct rpc_msg *out)
{
	enum { N = sizeof(described) / sizeof(described[0]) };
	Grpc__Reflection__V1__ListServiceResponse lr =
	    GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
	Grpc__Reflection__V1__ServiceResponse svc[N], *ptrs[N];

	for (size_t i = 0; i < N; i++) {
		grpc__reflection__v1__service_response__init(&svc[i]);
		svc[i].name = (char *)described[i];
		ptrs[i] = &svc[i];
	}
	lr.n_service = N;
	lr.service = ptrs;
	resp->message_response_case =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
	resp->list_services_response = &lr;
	return answer(resp, out);
}

static int reflect(struct rpc *r, const uint8_t *buf, size_t len, struct rpc_msg *out)
{
	Grpc__Reflection__V1__ServerReflectionRequest *rq =
	    grpc__reflection__v1__server_reflection_request__unpack(NULL, len, buf);
	Grpc__Reflection__V1__ServerReflectionResponse resp =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
	int rc;

	if (!rq)
		return rpc_fail(r, GRPC_STATUS_INVALID_ARGUMENT,
				"malformed ServerReflectionRequest");
	resp.valid_host = rq->host;
	resp.original_request = rq;
	switch (rq->message_request_case) {
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
		rc = answer_services(&resp, out);
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
		rc = answer_files(&resp, rq->file_by_filename, NULL, out);
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
		rc = answer_files(&resp, NULL, rq->file_containing_symbol, out);
		break;
	default: /* extensions: proto3 files declare none */
		rc = answer_error(&resp, GRPC_STATUS_NOT_FOUND, "no extensions", out);
		break;
	}
	grpc__reflection__v1__server_reflection_request__free_unpacked(rq, NULL);
	return rc;
}

const struct rpc_method rpc_reflection_methods[] = {
    {.paths = {REFLECTION("v1"), REFLECTION("v1alpha")}, .shape = RPC_BIDI, .reply = reflect},
    {.shape = RPC_UNARY},
};

/* The way back from ipivd's JSON API (api.h) to the collector's snapshot model, for clients
 * such as ipivtop --connect. Pure: the caller fetches the text. */
#ifndef IPIV_API_PARSE_H
#define IPIV_API_PARSE_H

#include <jansson.h>
#include <stddef.h>

#include "collector.h"
#include "naming.h"

/*
 * What the API does not carry, and what the parsed model holds instead:
 * - vm: the API's opaque id (16 hex digits) as a number, stable while ipivd runs, never the
 *   kernel pointer; stats_id is "".
 * - taken_ns, self.polls and self.last_poll_err: 0.
 * - a probe's err: the errno whose strerror() the API printed (-EIO if none matches).
 * Everything else round-trips exactly (halt time goes through seconds as a double and is
 * rounded back to nanoseconds).
 *
 * Errors are -EINVAL (malformed document) or -ENOMEM, with one line in err naming the field,
 * e.g. "vms[2].counts.sent: expected a non-negative integer".
 */

/* Parses JSON text; err gets "line L column C: reason". */
int api_parse_text(const char *text, size_t len, json_t **doc, char *err, size_t err_size);

/* {"vms": [...]} into snap->vms (summaries: no classes, exits, vCPU rows or matrix) and a
 * names array (one VM_NAME_MAX slot per VM, sanitised; free() it). snap->self is untouched. */
int api_parse_vms(const json_t *doc, struct ipiv_snapshot *snap, char (**names)[VM_NAME_MAX],
		  char *err, size_t err_size);

/* One VM in detail into *vm (which the caller zeroed) and its name. */
int api_parse_vm_detail(const json_t *doc, struct ipiv_vm_stats *vm, char name[VM_NAME_MAX],
			char *err, size_t err_size);

/* /api/v1/status into snap->self; *degraded and version (sanitised) if not NULL. */
int api_parse_status(const json_t *doc, struct ipiv_snapshot *snap, bool *degraded,
		     char *version, size_t version_size, char *err, size_t err_size);

/* The API's id string back to the key kept in ipiv_vm_stats.vm, and the other way. */
int api_parse_vm_key(const char *id, uint64_t *key);
void api_vm_key_str(uint64_t key, char out[17]);

/* Frees the arrays of one parsed VM (not the struct). */
void api_parse_vm_free(struct ipiv_vm_stats *vm);
/* Frees a snapshot built by these functions (probe names included). NULL is fine. */
void api_parse_snapshot_free(struct ipiv_snapshot *snap);

#endif

/* Fuzzes ipivtop's parser of ipivd's JSON API (api_parse.h), which reads whatever a host on
 * the network sends. Each input is parsed as every document the API serves. Properties: only
 * 0, -EINVAL or -ENOMEM, an error is one printable line, names and texts come out sanitised,
 * and what parses is a fixed point: written back by ipivd's own writers (api.c, diag_report.c)
 * and parsed again, it writes the same document (ids aside: the writer hashes them). */
#include <errno.h>
#include <jansson.h>

#include "fuzz.h"
#include "ipivd/api.h"
#include "ipivtop/api_parse.h"

#define ID_KEY	 0x243f6a8885a308d3ull
#define TAKEN_NS 5000000000000ull

static char *dump(const json_t *doc)
{
	char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);

	FUZZ_CHECK(s, "%s", "a document written by ipivd cannot be serialised");
	return s;
}

static void check_rc(const char *what, int r, const char *err)
{
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM, "%s returned %d", what, r);
	if (r)
		fuzz_check_error_line(what, err);
}

static void drop_ids(json_t *doc)
{
	json_t *vm;
	size_t i;

	json_object_del(doc, "id");
	json_array_foreach(json_object_get(doc, "vms"), i, vm)
	{
		json_object_del(vm, "id");
	}
}

/* {"vms": [...]}: parsed, written by api_vms, parsed and written again. */
static json_t *vms_round(const json_t *doc, const char *what)
{
	struct ipiv_snapshot *snap = calloc(1, sizeof(*snap));
	char(*names)[VM_NAME_MAX] = NULL, err[256] = "";
	struct api_latency *lat = NULL;
	const char **name_ptrs;
	json_t *out;
	int r;

	FUZZ_CHECK(snap, "%s", "out of memory");
	r = api_parse_vms(doc, snap, &names, &lat, err, sizeof(err));
	check_rc(what, r, err);
	if (r) {
		api_parse_snapshot_free(snap);
		return NULL;
	}
	name_ptrs = calloc(snap->n_vms + 1, sizeof(*name_ptrs));
	FUZZ_CHECK(name_ptrs, "%s", "out of memory");
	for (size_t i = 0; i < snap->n_vms; i++) {
		fuzz_check_sanitized("vm name", names[i], VM_NAME_MAX);
		name_ptrs[i] = names[i];
	}
	out = api_vms(snap, name_ptrs, ID_KEY);
	FUZZ_CHECK(out, "%s", "api_vms wrote nothing for a parsed document");
	free(name_ptrs);
	free(names);
	free(lat);
	api_parse_snapshot_free(snap);
	return out;
}

/* One VM in detail, the same way through api_vm_detail. */
static json_t *detail_round(const json_t *doc, const char *what)
{
	struct ipiv_vm_stats vm = {0};
	struct ipiv_snapshot snap = {.vms = &vm, .n_vms = 1};
	char name[VM_NAME_MAX], err[256] = "";
	const char *names[1] = {name};
	json_t *out;
	int r;

	r = api_parse_vm_detail(doc, &vm, name, err, sizeof(err));
	check_rc(what, r, err);
	if (r)
		return NULL;
	fuzz_check_sanitized("vm name", name, VM_NAME_MAX);
	out = api_vm_detail(&snap, names, ID_KEY, name);
	FUZZ_CHECK(out, "the detail of \"%s\" not found by its own name", name);
	api_parse_vm_free(&vm);
	return out;
}

static json_t *status_round(const json_t *doc, const char *what)
{
	struct ipiv_snapshot *snap = calloc(1, sizeof(*snap));
	char version[64], err[256] = "";
	bool degraded;
	json_t *out;
	int r;

	FUZZ_CHECK(snap, "%s", "out of memory");
	r = api_parse_status(doc, snap, &degraded, version, sizeof(version), err, sizeof(err));
	check_rc(what, r, err);
	if (r) {
		api_parse_snapshot_free(snap);
		return NULL;
	}
	fuzz_check_sanitized("version", version, sizeof(version));
	for (size_t i = 0; i < snap->self.n_probes; i++)
		FUZZ_CHECK(snap->self.probes[i].name && snap->self.probes[i].prog,
			   "probe %zu without a name", i);
	out = api_status(snap, version);
	FUZZ_CHECK(out, "%s", "api_status wrote nothing for a parsed document");
	api_parse_snapshot_free(snap);
	return out;
}

static void check_result(const struct diag_result *res)
{
	for (size_t i = 0; i < res->n_findings; i++) {
		const struct diag_finding *f = &res->findings[i];

		fuzz_check_sanitized("finding title", f->title, sizeof(f->title));
		fuzz_check_sanitized("finding remedy", f->remedy, sizeof(f->remedy));
		FUZZ_CHECK(f->n_evidence <= DIAG_MAX_EVIDENCE, "%zu evidence", f->n_evidence);
		for (size_t j = 0; j < f->n_evidence; j++) {
			fuzz_check_sanitized("evidence name", f->evidence[j].name,
					     sizeof(f->evidence[j].name));
			fuzz_check_sanitized("evidence text", f->evidence[j].text,
					     sizeof(f->evidence[j].text));
		}
	}
}

static json_t *findings_round(const json_t *doc, const char *what)
{
	struct api_findings *af = NULL;
	char err[256] = "";
	json_t *out;
	int r;

	r = api_parse_findings(doc, TAKEN_NS, &af, err, sizeof(err));
	check_rc(what, r, err);
	if (r)
		return NULL;
	check_result(&af->report.host_result);
	for (size_t i = 0; i < af->report.n_vms; i++) {
		fuzz_check_sanitized("vm name", af->report.vms[i].name, VM_NAME_MAX);
		check_result(&af->report.vms[i].result);
	}
	out = diag_report_json(&af->report, NULL);
	FUZZ_CHECK(out, "%s", "diag_report_json wrote nothing for a parsed document");
	api_findings_free(af);
	return out;
}

/* parse → write → parse → write: both writes must be the same document. */
static void fixed_point(const json_t *doc, json_t *(*round)(const json_t *, const char *),
			const char *what)
{
	json_t *once = round(doc, what), *twice;
	char *a, *b;

	if (!once)
		return;
	twice = round(once, "a document ipivd wrote");
	FUZZ_CHECK(twice, "%s: what ipivd wrote of the parsed document does not parse", what);
	drop_ids(once);
	drop_ids(twice);
	a = dump(once);
	b = dump(twice);
	FUZZ_CHECK(strcmp(a, b) == 0, "%s: not a fixed point:\n%s\n%s", what, a, b);
	free(a);
	free(b);
	json_decref(once);
	json_decref(twice);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256] = "", id[17];
	json_t *doc = NULL;
	uint64_t key;
	int r;

	r = api_parse_text((const char *)data, size, &doc, err, sizeof(err));
	check_rc("api_parse_text", r, err);
	if (r)
		return 0;
	fixed_point(doc, vms_round, "api_parse_vms");
	fixed_point(doc, detail_round, "api_parse_vm_detail");
	fixed_point(doc, status_round, "api_parse_status");
	fixed_point(doc, findings_round, "api_parse_findings");
	/* a VM id: exactly what api_vm_key_str writes */
	if (json_is_string(doc) && api_parse_vm_key(json_string_value(doc), &key) == 0) {
		api_vm_key_str(key, id);
		FUZZ_CHECK(strcmp(id, json_string_value(doc)) == 0, "id \"%s\" read back as %s",
			   json_string_value(doc), id);
	}
	json_decref(doc);
	return 0;
}

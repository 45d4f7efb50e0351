/* Prometheus' delimited protobuf exposition (io.prometheus.client.MetricFamily, see
 * metrics.proto) with protobuf-c: the current family's messages are built in an arena that
 * is emptied each time the family is written. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "expo_proto.h"
#include "metrics.pb-c.h"

typedef Io__Prometheus__Client__MetricFamily pb_family;
typedef Io__Prometheus__Client__Metric pb_metric;
typedef Io__Prometheus__Client__LabelPair pb_label;
typedef Io__Prometheus__Client__Histogram pb_histogram;
typedef Io__Prometheus__Client__Bucket pb_bucket;
typedef Io__Prometheus__Client__BucketSpan pb_span;

/* Native buckets further apart than this start a new span; closer ones are joined by empty
 * buckets, which take fewer bytes than a span. */
#define SPAN_GAP_MAX 2

struct expo_pb {
	pb_family family;
	bool open;
	size_t cap_metrics;
	/* every allocation the current family's messages point into */
	void **blocks;
	size_t n_blocks, cap_blocks;
};

static void *arena_alloc(struct expo_pb *pb, size_t size)
{
	void *p;

	if (pb->n_blocks == pb->cap_blocks) {
		size_t cap = pb->cap_blocks ? pb->cap_blocks * 2 : 256;
		void **blocks = realloc(pb->blocks, cap * sizeof(*blocks));

		if (!blocks)
			return NULL;
		pb->blocks = blocks;
		pb->cap_blocks = cap;
	}
	p = calloc(1, size ? size : 1);
	if (p)
		pb->blocks[pb->n_blocks++] = p;
	return p;
}

static char *arena_strdup(struct expo_pb *pb, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = arena_alloc(pb, n);

	if (p)
		memcpy(p, s, n);
	return p;
}

static void arena_reset(struct expo_pb *pb)
{
	for (size_t i = 0; i < pb->n_blocks; i++)
		free(pb->blocks[i]);
	pb->n_blocks = 0;
}

int expo_pb_new(struct expo_pb **out)
{
	struct expo_pb *pb = calloc(1, sizeof(*pb));

	if (!pb)
		return -ENOMEM;
	*out = pb;
	return 0;
}

void expo_pb_free(struct expo_pb *pb)
{
	if (!pb)
		return;
	arena_reset(pb);
	free(pb->blocks);
	free(pb->family.metric);
	free(pb);
}

static void put_varint(struct strbuf *out, uint64_t v)
{
	char b[10];
	size_t n = 0;

	do {
		b[n] = (char)(v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= (char)0x80;
		n++;
	} while (v);
	strbuf_append(out, b, n);
}

int expo_pb_flush(struct expo_pb *pb, struct strbuf *out)
{
	size_t len;
	uint8_t *bytes;
	int err = 0;

	if (pb->open && pb->family.n_metric) {
		len = io__prometheus__client__metric_family__get_packed_size(&pb->family);
		bytes = malloc(len ? len : 1);
		if (!bytes) {
			err = -ENOMEM;
		} else {
			io__prometheus__client__metric_family__pack(&pb->family, bytes);
			put_varint(out, len);
			strbuf_append(out, (const char *)bytes, len);
			free(bytes);
		}
	}
	pb->open = false;
	pb->family.n_metric = 0;
	arena_reset(pb);
	return err ? err : strbuf_error(out);
}

int expo_pb_begin(struct expo_pb *pb, struct strbuf *out, const char *name, enum expo_type type,
		  const char *help)
{
	static const Io__Prometheus__Client__MetricType pb_type[] = {
		[EXPO_COUNTER] = IO__PROMETHEUS__CLIENT__METRIC_TYPE__COUNTER,
		[EXPO_GAUGE] = IO__PROMETHEUS__CLIENT__METRIC_TYPE__GAUGE,
		[EXPO_HISTOGRAM] = IO__PROMETHEUS__CLIENT__METRIC_TYPE__HISTOGRAM,
		/* the protobuf format has no info type: an info is a gauge of value 1 */
		[EXPO_INFO] = IO__PROMETHEUS__CLIENT__METRIC_TYPE__GAUGE,
	};
	static const char *const sample_suffix[] = {[EXPO_COUNTER] = "_total",
						    [EXPO_GAUGE] = "",
						    [EXPO_HISTOGRAM] = "",
						    [EXPO_INFO] = "_info"};
	Io__Prometheus__Client__Metric **metric = pb->family.metric;
	size_t n = strlen(name), ns = strlen(sample_suffix[type]);
	int err = expo_pb_flush(pb, out);

	if (err)
		return err;
	io__prometheus__client__metric_family__init(&pb->family);
	pb->family.metric = metric;
	pb->family.name = arena_alloc(pb, n + ns + 1);
	pb->family.help = help ? arena_strdup(pb, help) : NULL;
	if (!pb->family.name || (help && !pb->family.help))
		return -ENOMEM;
	memcpy(pb->family.name, name, n);
	memcpy(pb->family.name + n, sample_suffix[type], ns + 1);
	pb->family.has_type = true;
	pb->family.type = pb_type[type];
	pb->open = true;
	return 0;
}

/* A new metric of the current family with its labels. */
static pb_metric *add_metric(struct expo_pb *pb, const struct expo_label *labels, size_t n_labels)
{
	pb_metric *m;

	if (pb->family.n_metric == pb->cap_metrics) {
		size_t cap = pb->cap_metrics ? pb->cap_metrics * 2 : 64;
		pb_metric **metric = realloc(pb->family.metric, cap * sizeof(*metric));

		if (!metric)
			return NULL;
		pb->family.metric = metric;
		pb->cap_metrics = cap;
	}
	m = arena_alloc(pb, sizeof(*m));
	if (!m)
		return NULL;
	io__prometheus__client__metric__init(m);
	if (n_labels) {
		pb_label *pairs = arena_alloc(pb, n_labels * sizeof(*pairs));

		m->label = arena_alloc(pb, n_labels * sizeof(*m->label));
		if (!pairs || !m->label)
			return NULL;
		for (size_t i = 0; i < n_labels; i++) {
			io__prometheus__client__label_pair__init(&pairs[i]);
			pairs[i].name = arena_strdup(pb, labels[i].name);
			pairs[i].value = arena_strdup(pb, labels[i].value);
			if (!pairs[i].name || !pairs[i].value)
				return NULL;
			m->label[i] = &pairs[i];
		}
		m->n_label = n_labels;
	}
	pb->family.metric[pb->family.n_metric++] = m;
	return m;
}

int expo_pb_value(struct expo_pb *pb, const struct expo_label *labels, size_t n_labels,
		  double value)
{
	pb_metric *m = add_metric(pb, labels, n_labels);

	if (!m)
		return -ENOMEM;
	if (pb->family.type == IO__PROMETHEUS__CLIENT__METRIC_TYPE__COUNTER) {
		Io__Prometheus__Client__Counter *c = arena_alloc(pb, sizeof(*c));

		if (!c)
			return -ENOMEM;
		io__prometheus__client__counter__init(c);
		c->has_value = true;
		c->value = value;
		m->counter = c;
	} else {
		Io__Prometheus__Client__Gauge *g = arena_alloc(pb, sizeof(*g));

		if (!g)
			return -ENOMEM;
		io__prometheus__client__gauge__init(g);
		g->has_value = true;
		g->value = value;
		m->gauge = g;
	}
	return 0;
}

/* The native buckets as spans and deltas (each count less the previous one). */
static int put_native(struct expo_pb *pb, pb_histogram *ph, const struct expo_native *nat)
{
	size_t n_spans = 0, n_deltas = 0;
	pb_span *spans;
	int64_t prev = 0;

	ph->has_schema = true;
	ph->schema = nat->schema;
	ph->has_zero_threshold = true;
	ph->zero_threshold = nat->zero_threshold;
	ph->has_zero_count = true;
	ph->zero_count = nat->zero_count;
	/* at most one span per bucket, and SPAN_GAP_MAX empty buckets between two */
	spans = arena_alloc(pb, (nat->n ? nat->n : 1) * sizeof(*spans));
	ph->positive_span = arena_alloc(pb, (nat->n ? nat->n : 1) * sizeof(*ph->positive_span));
	ph->positive_delta = arena_alloc(pb, (nat->n ? nat->n * (SPAN_GAP_MAX + 1) : 1) *
						     sizeof(*ph->positive_delta));
	if (!spans || !ph->positive_span || !ph->positive_delta)
		return -ENOMEM;
	for (size_t i = 0; i < nat->n; i++) {
		int64_t gap = i ? (int64_t)nat->index[i] - nat->index[i - 1] - 1 : 0;

		if (i == 0 || gap > SPAN_GAP_MAX) {
			pb_span *s = &spans[n_spans];

			io__prometheus__client__bucket_span__init(s);
			s->has_offset = s->has_length = true;
			/* the first span's offset is from index 0, the others' from the last end */
			s->offset = i ? (int32_t)gap : nat->index[0];
			ph->positive_span[n_spans++] = s;
		} else {
			for (int64_t g = 0; g < gap; g++) {
				ph->positive_delta[n_deltas++] = -prev;
				prev = 0;
				spans[n_spans - 1].length++;
			}
		}
		ph->positive_delta[n_deltas++] = (int64_t)nat->count[i] - prev;
		prev = (int64_t)nat->count[i];
		spans[n_spans - 1].length++;
	}
	if (!nat->n) {
		/* no bucket yet: a span of length 0 still says "native" to any reader */
		io__prometheus__client__bucket_span__init(&spans[0]);
		spans[0].has_offset = spans[0].has_length = true;
		ph->positive_span[n_spans++] = &spans[0];
	}
	ph->n_positive_span = n_spans;
	ph->n_positive_delta = n_deltas;
	return 0;
}

int expo_pb_histogram(struct expo_pb *pb, const struct expo_label *labels, size_t n_labels,
		      const struct expo_histogram *h)
{
	pb_metric *m = add_metric(pb, labels, n_labels);
	pb_histogram *ph = m ? arena_alloc(pb, sizeof(*ph)) : NULL;
	pb_bucket *buckets;
	uint64_t cumulative = 0;

	if (!ph)
		return -ENOMEM;
	io__prometheus__client__histogram__init(ph);
	m->histogram = ph;
	/* +Inf is implied by sample_count, as in Prometheus' own clients */
	buckets = arena_alloc(pb, (h->n_buckets ? h->n_buckets : 1) * sizeof(*buckets));
	ph->bucket = arena_alloc(pb, (h->n_buckets ? h->n_buckets : 1) * sizeof(*ph->bucket));
	if (!buckets || !ph->bucket)
		return -ENOMEM;
	for (size_t i = 0; i < h->n_buckets; i++) {
		cumulative += h->counts[i];
		io__prometheus__client__bucket__init(&buckets[i]);
		buckets[i].has_cumulative_count = buckets[i].has_upper_bound = true;
		buckets[i].cumulative_count = cumulative;
		buckets[i].upper_bound = h->le[i];
		ph->bucket[i] = &buckets[i];
	}
	ph->n_bucket = h->n_buckets;
	ph->has_sample_count = ph->has_sample_sum = true;
	ph->sample_count = cumulative + h->counts[h->n_buckets];
	ph->sample_sum = h->sum;
	return h->native ? put_native(pb, ph, h->native) : 0;
}

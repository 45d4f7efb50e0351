/* The protobuf side of the exposition writer (expo.c): Prometheus' delimited protobuf
 * format, one MetricFamily message at a time, each after its length as a varint. Only
 * expo.c calls it; the rules callers rely on are in expo.h. */
#ifndef IPIV_EXPO_PROTO_H
#define IPIV_EXPO_PROTO_H

#include "expo.h"
#include "strbuf.h"

struct expo_pb;

int expo_pb_new(struct expo_pb **out);
void expo_pb_free(struct expo_pb *pb);

/* Starts a family named as its samples are (counter "x" is "x_total", info "x" "x_info",
 * histogram "x" stays "x"), after writing the previous one to out. */
int expo_pb_begin(struct expo_pb *pb, struct strbuf *out, const char *name, enum expo_type type,
		  const char *help);
/* A counter, gauge or info (value 1) sample of the current family. */
int expo_pb_value(struct expo_pb *pb, const struct expo_label *labels, size_t n_labels,
		  double value);
/* A histogram sample, checked by expo_histogram(): classic buckets, and native ones too when
 * h->native is set. */
int expo_pb_histogram(struct expo_pb *pb, const struct expo_label *labels, size_t n_labels,
		      const struct expo_histogram *h);
/* Writes the current family to out (a family with no sample is not written: Prometheus'
 * clients leave those out too). */
int expo_pb_flush(struct expo_pb *pb, struct strbuf *out);

#endif

/*
 * wirecheck.h: what protobuf-c does not check when it reads a message.
 *
 * protobuf-c copies a string field into a NUL-terminated C string, so a
 * peer's "a\0b" silently becomes "a" (a different node id, resource name or
 * tenant). wirecheck_strings() walks the encoded message with its
 * descriptor and finds such strings before anything is unpacked. Pure;
 * safe from any thread.
 */
#ifndef XDS_WIRECHECK_H
#define XDS_WIRECHECK_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Deepest nesting of messages walked (Struct in Struct in ...). */
#define WIRECHECK_DEPTH_MAX 48

/*
 * Checks every string field of the message of type desc encoded in the n
 * bytes at p, at every depth, including map keys and values and the
 * strings of google.protobuf.Struct. Returns 0 when none holds a NUL byte;
 * XDS_EINVAL when one does (*msg and *field, both nullable, are set to the
 * static names of that message type and field, e.g.
 * "envoy.config.core.v3.Node" and "id"); XDS_ETOOBIG
 * when messages nest deeper than WIRECHECK_DEPTH_MAX; XDS_EPARSE when the
 * bytes are not a well-formed message (unpacking would fail too).
 */
int wirecheck_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                      size_t n, const char **msg, const char **field);

#endif

#!/usr/bin/env python3
"""gen.py — writes the malformed GGUF files of tests/gguf_bad/ and their expectation table.

Run from anywhere: `python3 tests/gguf_bad/gen.py` (standard library only). It rewrites every
`*.gguf` here plus `expected.tsv` (file, expected status, a substring the error message must contain).
The files are committed; rerun this only when adding cases, and commit the result.

Everything starts from one tiny valid GGUF v3 file (`ok_base.gguf`, also written) built field by
field, independently of chingu's own writer. Each case changes one field, or cuts the file inside
one field. Fields are addressed as (section, index, tag), e.g. ("kv", 4, "array length").

Decisions encoded here (see src/gguf/gguf.h):
  * a BOOL byte other than 0 or 1 is an error (FORMAT), in scalars and arrays;
  * unknown *value* types are FORMAT errors; unknown *tensor* types are UNSUPPORTED (a newer
    ggml could define them);
  * GGUF versions other than 2 and 3 (and byte-swapped, i.e. big-endian, files) are UNSUPPORTED.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# GGUF value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
# ggml tensor types used here
T_F32, T_Q8_0 = 0, 8


def u32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def u64(v):
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


def gstr(s):
    return u64(len(s)), s


class Field:
    def __init__(self, sec, idx, tag, data):
        self.sec, self.idx, self.tag, self.data = sec, idx, tag, data


SCALAR_PACK = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<B",
               U64: "<Q", I64: "<q", F64: "<d"}


def kv_fields(i, key, vtype, value):
    f = [Field("kv", i, "key length", u64(len(key))), Field("kv", i, "key bytes", key),
         Field("kv", i, "value type", u32(vtype))]
    if vtype == STRING:
        f += [Field("kv", i, "string length", u64(len(value))), Field("kv", i, "string bytes", value)]
    elif vtype == ARRAY:
        et, elems = value
        f += [Field("kv", i, "array element type", u32(et)), Field("kv", i, "array length", u64(len(elems)))]
        if et == STRING:
            for j, s in enumerate(elems):
                f += [Field("kv", i, "string element %d length" % j, u64(len(s))),
                      Field("kv", i, "string element %d bytes" % j, s)]
        else:
            f.append(Field("kv", i, "array body", b"".join(struct.pack(SCALAR_PACK[et], x) for x in elems)))
    else:
        f.append(Field("kv", i, "value", struct.pack(SCALAR_PACK[vtype], value)))
    return f


def ti_fields(i, name, ne, ttype, offset):
    f = [Field("ti", i, "name length", u64(len(name))), Field("ti", i, "name bytes", name),
         Field("ti", i, "n_dims", u32(len(ne)))]
    for d, n in enumerate(ne):
        f.append(Field("ti", i, "ne[%d]" % d, u64(n)))
    f += [Field("ti", i, "type", u32(ttype)), Field("ti", i, "offset", u64(offset))]
    return f


BASE_KVS = [
    (b"general.architecture", STRING, b"test"),
    (b"general.alignment", U32, 32),
    (b"test.count", U32, 7),
    (b"test.flag", BOOL, 1),
    (b"test.ids", ARRAY, (U32, [1, 2, 3])),
    (b"test.words", ARRAY, (STRING, [b"alphabet", b"bc"])),
    (b"test.scale", F32, 0.5),
    (b"test.name", STRING, b"hello world"),
    (b"test.flags", ARRAY, (BOOL, [1, 0])),
]
# name, ne, type, offset, n_bytes. t.a: 16 f32 = 64 bytes; t.b: 2 rows of one Q8_0 block = 68 bytes.
BASE_TENSORS = [
    (b"t.a", [16], T_F32, 0, 64),
    (b"t.b", [32, 2], T_Q8_0, 64, 68),
]


def base_fields():
    f = [Field("header", 0, "magic", b"GGUF"), Field("header", 0, "version", u32(3)),
         Field("header", 0, "n_tensors", u64(len(BASE_TENSORS))), Field("header", 0, "n_kv", u64(len(BASE_KVS)))]
    for i, (k, t, v) in enumerate(BASE_KVS):
        f += kv_fields(i, k, t, v)
    for i, (n, ne, t, off, _) in enumerate(BASE_TENSORS):
        f += ti_fields(i, n, ne, t, off)
    return f


def data_section():
    out = b""
    for j, (_, _, _, off, nb) in enumerate(BASE_TENSORS):
        assert len(out) == off
        out += bytes((j * 37 + k) & 0xFF for k in range(nb))
        out += b"\0" * ((-len(out)) % 32)
    return out


def assemble(fields, align=32, data=None):
    head = b"".join(x.data for x in fields)
    pad = b"\0" * ((-len(head)) % align)
    return head + pad + (data_section() if data is None else data)


def find(fields, sec, idx, tag):
    for k, x in enumerate(fields):
        if (x.sec, x.idx, x.tag) == (sec, idx, tag):
            return k
    raise KeyError((sec, idx, tag))


def offset_of(fields, sec, idx, tag):
    k = find(fields, sec, idx, tag)
    return sum(len(x.data) for x in fields[:k])


CASES = []   # (name, bytes, status, substring)


def case(name, data, status, substring):
    assert name not in [c[0] for c in CASES], name
    CASES.append((name, data, status, substring))


def mutated(changes, align=32, data=None):
    f = base_fields()
    for (sec, idx, tag), new in changes:
        f[find(f, sec, idx, tag)].data = new
    return assemble(f, align, data)


def cut_inside(sec, idx, tag):
    """The valid file cut in the middle of a field (after its first byte when it is longer than 1)."""
    f = base_fields()
    k = find(f, sec, idx, tag)
    start = sum(len(x.data) for x in f[:k])
    n = len(f[k].data)
    return assemble(f)[: start + (n // 2 if n > 1 else 0)]


def kv_list_file(kvs, tensors=BASE_TENSORS, version=3):
    """A file from an explicit kv list (for structural cases: nested arrays, duplicates …)."""
    f = [Field("header", 0, "magic", b"GGUF"), Field("header", 0, "version", u32(version)),
         Field("header", 0, "n_tensors", u64(len(tensors))), Field("header", 0, "n_kv", u64(len(kvs)))]
    for i, kv in enumerate(kvs):
        if isinstance(kv, bytes):   # raw bytes of one whole entry
            f.append(Field("kv", i, "raw", kv))
        else:
            f += kv_fields(i, *kv)
    for i, (n, ne, t, off, _) in enumerate(tensors):
        f += ti_fields(i, n, ne, t, off)
    return assemble(f)


def main():
    valid = assemble(base_fields())
    base_size = len(valid)

    # ---- truncation in every section (the cut is placed in the last entry that has the field, so
    # the header's "counts need at least N bytes" check does not fire first) ----
    case("trunc_empty", b"", "FORMAT", "magic")
    case("trunc_magic", valid[:2], "FORMAT", "truncated file: header: magic")
    case("trunc_version", valid[:6], "FORMAT", "truncated file: header: version")
    case("trunc_n_tensors", valid[:12], "FORMAT", "header: n_tensors")
    case("trunc_n_kv", valid[:20], "FORMAT", "header: n_kv")
    case("trunc_counts_early", valid[:60], "FORMAT", "need at least")
    last_kv = len(BASE_KVS) - 1
    case("trunc_key_length", cut_inside("kv", last_kv, "key length"), "FORMAT", "key length at offset")
    case("trunc_key_bytes", cut_inside("kv", last_kv, "key bytes"), "FORMAT", "key bytes at offset")
    case("trunc_value_type", cut_inside("kv", last_kv, "value type"), "FORMAT", "value type at offset")
    case("trunc_value", cut_inside("kv", 6, "value"), "FORMAT", "'test.scale'): value at offset")
    case("trunc_string_length", cut_inside("kv", 7, "string length"), "FORMAT", "string value length at offset")
    case("trunc_string_value", cut_inside("kv", 7, "string bytes"), "FORMAT", "string value bytes at offset")
    case("trunc_array_elem_type", cut_inside("kv", last_kv, "array element type"), "FORMAT", "array element type at offset")
    case("trunc_array_length", cut_inside("kv", last_kv, "array length"), "FORMAT", "array length at offset")
    case("trunc_array_body", cut_inside("kv", last_kv, "array body"), "FORMAT", "array of 2 BOOL")
    case("trunc_string_elem_length", cut_inside("kv", 5, "string element 1 length"), "FORMAT",
         "string element 1 length at offset")
    case("trunc_string_elem_bytes", cut_inside("kv", 5, "string element 1 bytes"), "FORMAT",
         "string element 1 bytes at offset")
    case("trunc_tensor_name_length", cut_inside("ti", 1, "name length"), "FORMAT", "tensor name length at offset")
    case("trunc_tensor_name_bytes", cut_inside("ti", 1, "name bytes"), "FORMAT", "tensor name bytes at offset")
    case("trunc_n_dims", cut_inside("ti", 1, "n_dims"), "FORMAT", "'t.b'): n_dims at offset")
    case("trunc_ne", cut_inside("ti", 1, "ne[1]"), "FORMAT", "'t.b'): ne[1] at offset")
    case("trunc_tensor_type", cut_inside("ti", 1, "type"), "FORMAT", "'t.b'): type at offset")
    case("trunc_tensor_offset", cut_inside("ti", 1, "offset"), "FORMAT", "'t.b'): offset at offset")
    f = base_fields()
    infos_end = sum(len(x.data) for x in f)
    assert infos_end % 32 != 0, "the base file must need padding before its data"
    case("trunc_padding", valid[: infos_end + 1], "FORMAT", "padding before the data section")
    case("trunc_data", valid[: base_size - 40], "FORMAT", "'t.b'")
    case("trunc_data_first_tensor", valid[: infos_end + ((-infos_end) % 32) + 10], "FORMAT",
         "extends past the end of the file")

    # ---- huge counts and lengths ----
    case("huge_n_kv", mutated([(("header", 0, "n_kv"), u64(1 << 62))]), "LIMIT", "n_kv")
    case("huge_n_tensors", mutated([(("header", 0, "n_tensors"), u64(1 << 40))]), "LIMIT", "n_tensors")
    case("n_kv_past_eof", mutated([(("header", 0, "n_kv"), u64(1000))]), "FORMAT", "need at least")
    case("n_tensors_past_eof", mutated([(("header", 0, "n_tensors"), u64(100))]), "FORMAT", "need at least")
    case("huge_key_length", mutated([(("kv", 2, "key length"), u64(1 << 63))]), "LIMIT", "key length")
    case("key_length_past_eof", mutated([(("kv", 2, "key length"), u64(5000))]), "FORMAT", "key bytes at offset")
    case("huge_string_length", mutated([(("kv", 0, "string length"), u64((1 << 64) - 1))]), "LIMIT",
         "string value length")
    case("string_length_past_eof", mutated([(("kv", 0, "string length"), u64(100000))]), "FORMAT",
         "string value bytes")
    case("huge_array_length", mutated([(("kv", 4, "array length"), u64(1 << 62))]), "LIMIT", "array length")
    case("array_length_past_eof", mutated([(("kv", 4, "array length"), u64(1 << 28))]), "FORMAT",
         "array of 268435456 UINT32")
    case("string_array_length_past_eof", mutated([(("kv", 5, "array length"), u64(1 << 29))]), "FORMAT",
         "strings at offset")
    case("huge_string_elem_length", mutated([(("kv", 5, "string element 1 length"), u64(1 << 60))]), "LIMIT",
         "string element 1 length")
    case("huge_tensor_name_length", mutated([(("ti", 0, "name length"), u64(1 << 40))]), "LIMIT",
         "tensor name length")

    # ---- dimensions ----
    case("n_dims_0", mutated([(("ti", 0, "n_dims"), u32(0))]), "FORMAT", "n_dims 0")
    case("n_dims_5", mutated([(("ti", 0, "n_dims"), u32(5))]), "FORMAT", "n_dims 5")
    case("n_dims_huge", mutated([(("ti", 0, "n_dims"), u32(0xFFFFFFFF))]), "FORMAT", "n_dims 4294967295")
    case("ne_negative", mutated([(("ti", 1, "ne[1]"), u64(-2))]), "FORMAT", "ne[1] = -2")
    case("dims_overflow", mutated([(("ti", 1, "ne[0]"), u64(1 << 32)), (("ti", 1, "ne[1]"), u64(1 << 32))]), "FORMAT",
         "overflow the element count")
    case("bytes_overflow", mutated([(("ti", 0, "ne[0]"), u64(1 << 62))]), "FORMAT", "byte size")
    case("ne0_not_block_multiple", mutated([(("ti", 1, "ne[0]"), u64(33))]), "FORMAT", "block size 32")

    # ---- types ----
    case("unknown_value_type", mutated([(("kv", 2, "value type"), u32(13))]), "FORMAT", "unknown value type 13")
    case("unknown_value_type_max", mutated([(("kv", 2, "value type"), u32(0xFFFFFFFF))]), "FORMAT",
         "unknown value type 4294967295")
    case("unknown_array_elem_type", mutated([(("kv", 4, "array element type"), u32(77))]), "FORMAT",
         "unknown array element type 77")
    nested = (u64(len(b"test.nested")) + b"test.nested" + u32(ARRAY) + u32(ARRAY) + u64(1) + u32(U32) + u64(1) + u32(5))
    case("nested_array", kv_list_file([BASE_KVS[0], nested]), "FORMAT", "nested array")
    case("unknown_tensor_type", mutated([(("ti", 0, "type"), u32(99))]), "UNSUPPORTED", "unknown tensor type 99")
    case("removed_tensor_type", mutated([(("ti", 0, "type"), u32(4))]), "UNSUPPORTED", "unknown tensor type 4")

    # ---- alignment and layout ----
    case("alignment_zero", mutated([(("kv", 1, "value"), u32(0))]), "FORMAT", "general.alignment 0")
    case("alignment_not_pow2", mutated([(("kv", 1, "value"), u32(48))]), "FORMAT", "not a non-zero power of two")
    al64 = kv_list_file([(b"general.alignment", U64, 32)])
    case("alignment_wrong_type", al64, "FORMAT", "must be UINT32")
    case("misaligned_offset", mutated([(("ti", 1, "offset"), u64(68))]), "FORMAT",
         "not a multiple of the alignment 32")
    case("overlap_same_offset", mutated([(("ti", 1, "offset"), u64(0))]), "FORMAT", "overlap")
    case("overlap_partial", mutated([(("ti", 1, "offset"), u64(32))]), "FORMAT", "overlap")
    case("tensor_past_eof", mutated([(("ti", 1, "offset"), u64(1 << 20))]), "FORMAT", "past the end of the file")
    case("tensor_offset_overflow", mutated([(("ti", 1, "offset"), u64((1 << 64) - 32))]), "FORMAT",
         "past the end of the file")
    case("tensor_grown_past_eof", mutated([(("ti", 1, "ne[1]"), u64(3))]), "FORMAT", "past the end of the file")

    # ---- names and keys ----
    dup = kv_list_file([BASE_KVS[0], BASE_KVS[2], (b"test.count", U8, 1)])
    case("duplicate_key", dup, "FORMAT", "duplicate key 'test.count'")
    dup_t = kv_list_file([BASE_KVS[0]], tensors=[BASE_TENSORS[0], (b"t.a", [32, 2], T_Q8_0, 64, 68)])
    case("duplicate_tensor_name", dup_t, "FORMAT", "duplicate tensor name 't.a'")
    case("key_invalid_utf8", mutated([(("kv", 2, "key bytes"), b"test.c\xffunt")]), "FORMAT", "not valid UTF-8")
    case("key_overlong_utf8", mutated([(("kv", 2, "key bytes"), b"test.\xc0\xafount")]), "FORMAT", "not valid UTF-8")
    case("key_surrogate_utf8", mutated([(("kv", 2, "key bytes"), b"test\xed\xa0\x80ount")]), "FORMAT",
         "not valid UTF-8")
    case("key_empty", mutated([(("kv", 2, "key length"), u64(0)), (("kv", 2, "key bytes"), b"")]), "FORMAT",
         "empty key")
    case("key_with_nul", mutated([(("kv", 2, "key bytes"), b"test\x00count")]), "FORMAT", "NUL byte")
    case("tensor_name_invalid_utf8", mutated([(("ti", 1, "name bytes"), b"t\x80b")]), "FORMAT", "not valid UTF-8")
    case("tensor_name_empty", mutated([(("ti", 1, "name length"), u64(0)), (("ti", 1, "name bytes"), b"")]), "FORMAT",
         "empty tensor name")

    # ---- values ----
    case("bool_value_2", mutated([(("kv", 3, "value"), b"\x02")]), "FORMAT", "bool value 2")
    case("bool_array_bad", mutated([(("kv", 8, "array body"), b"\x01\xff")]), "FORMAT", "bool value 255")

    # ---- magic and version ----
    case("wrong_magic", mutated([(("header", 0, "magic"), b"GGML")]), "FORMAT", "bad magic")
    case("magic_only", b"GGUF", "FORMAT", "version")
    case("version_1", mutated([(("header", 0, "version"), u32(1))]), "UNSUPPORTED", "version 1 ")
    case("version_0", mutated([(("header", 0, "version"), u32(0))]), "UNSUPPORTED", "version 0 ")
    case("version_99", mutated([(("header", 0, "version"), u32(99))]), "UNSUPPORTED", "version 99 ")
    case("big_endian", mutated([(("header", 0, "version"), struct.pack(">I", 3))]), "UNSUPPORTED", "big-endian")

    for old in os.listdir(HERE):
        if old.endswith(".gguf"):
            os.remove(os.path.join(HERE, old))
    with open(os.path.join(HERE, "ok_base.gguf"), "wb") as fh:
        fh.write(valid)
    # A valid variant: version 2.
    with open(os.path.join(HERE, "ok_v2.gguf"), "wb") as fh:
        fh.write(mutated([(("header", 0, "version"), u32(2))]))
    with open(os.path.join(HERE, "expected.tsv"), "w") as fh:
        fh.write("# file\tstatus\tmessage substring   (written by gen.py; ok_*.gguf are valid)\n")
        for name, data, status, sub in CASES:
            with open(os.path.join(HERE, name + ".gguf"), "wb") as out:
                out.write(data)
            fh.write("%s.gguf\t%s\t%s\n" % (name, status, sub))
    print("wrote %d malformed files + 2 valid ones to %s" % (len(CASES), HERE))


if __name__ == "__main__":
    main()

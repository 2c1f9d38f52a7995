"""Bitstring Status List v1.0 encoding, bit order and the status list credential."""

import base64
import gzip

import pytest

from certificates import signing, status_list

# From the Bitstring Status List v1.0 spec, example "BitstringStatusListCredential":
# an all-zero 16 KiB list.
SPEC_EMPTY_LIST = "uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA"


def test_a_new_list_is_16_kib_of_zeros():
    bits = status_list.new_bitstring()

    assert len(bits) * 8 == status_list.MIN_LIST_BITS == 131_072
    assert not any(bits)


def test_the_spec_example_decodes_to_an_empty_16_kib_list():
    assert status_list.decode(SPEC_EMPTY_LIST) == bytearray(16 * 1024)


def test_encoding_is_gzip_then_unpadded_multibase_base64url():
    bits = status_list.new_bitstring()
    status_list.set_bit(bits, 5)

    encoded = status_list.encode(bits)

    assert encoded.startswith("uH4sI")  # 'u' + base64url of the gzip magic 1f 8b 08
    assert "=" not in encoded and "+" not in encoded and "/" not in encoded
    raw = base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4))
    assert gzip.decompress(raw) == bits


def test_encoding_depends_only_on_the_bits():
    assert status_list.encode(status_list.new_bitstring()) == status_list.encode(status_list.new_bitstring())


@pytest.mark.parametrize(
    ("index", "byte", "value"),
    [
        (0, 0, 0b1000_0000),  # index 0 is the left-most bit of the first byte
        (1, 0, 0b0100_0000),
        (7, 0, 0b0000_0001),
        (8, 1, 0b1000_0000),
        (94_567, 11_820, 0b0000_0001),
        (131_071, 16_383, 0b0000_0001),
    ],
)
def test_bit_order_follows_the_spec(index, byte, value):
    bits = status_list.new_bitstring()

    status_list.set_bit(bits, index)

    assert bits[byte] == value
    assert sum(bits) == value
    assert status_list.is_set(bits, index)
    assert status_list.is_set(status_list.decode(status_list.encode(bits)), index)


def test_clearing_a_bit_leaves_its_neighbours_alone():
    bits = status_list.new_bitstring()
    for index in (9, 10, 11):
        status_list.set_bit(bits, index)

    status_list.set_bit(bits, 10, False)

    assert [status_list.is_set(bits, i) for i in (9, 10, 11)] == [True, False, True]


@pytest.mark.parametrize("index", [-1, 131_072, 10**9])
def test_an_index_outside_the_list_is_an_error(index):
    with pytest.raises(status_list.StatusListError, match="outside"):
        status_list.is_set(status_list.new_bitstring(), index)


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        ("zH4sIAAAA", "start with 'u'"),
        ("u!!!!", "not valid"),
        ("u" + base64.urlsafe_b64encode(b"not gzip").decode().rstrip("="), "not valid"),
        ("u" + base64.urlsafe_b64encode(gzip.compress(bytes(1024))).decode().rstrip("="), "below"),
        ("u" + base64.urlsafe_b64encode(gzip.compress(bytes(16 * 1024))[:-20]).decode().rstrip("="), "truncated"),
        ("u" + base64.urlsafe_b64encode(gzip.compress(bytes(17 * 1024 * 1024))).decode().rstrip("="), "beyond"),
    ],
)
def test_a_bad_encoded_list_is_rejected(encoded, message):
    with pytest.raises(status_list.StatusListError, match=message):
        status_list.decode(encoded)


@pytest.mark.parametrize("size_bits", [8, 131_064, 131_073])
def test_lists_shorter_than_16_kib_or_not_whole_bytes_are_refused(size_bits):
    with pytest.raises(status_list.StatusListError):
        status_list.new_bitstring(size_bits)


def test_the_status_list_credential_is_an_unsigned_bitstring_status_list_credential():
    bits = status_list.new_bitstring()
    status_list.set_bit(bits, 3)

    credential = status_list.status_list_credential(
        status_list_url="https://shipwright.example/credentials/status/1",
        issuer_did="did:web:shipwright.example",
        bits=bits,
        valid_from="2025-01-31T12:00:00Z",
    )

    assert credential == {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": "https://shipwright.example/credentials/status/1",
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": "did:web:shipwright.example",
        "validFrom": "2025-01-31T12:00:00Z",
        "credentialSubject": {
            "id": "https://shipwright.example/credentials/status/1#list",
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": status_list.encode(bits),
        },
    }


def test_the_status_list_credential_signs_and_verifies():
    key = signing.generate_private_key()
    credential = status_list.status_list_credential(
        status_list_url="https://shipwright.example/credentials/status/1",
        issuer_did="did:web:shipwright.example",
        bits=status_list.new_bitstring(),
        valid_from="2025-01-31T12:00:00Z",
        valid_until="2025-02-01T12:00:00Z",
    )

    signed = signing.sign(
        credential,
        private_key=key,
        verification_method="did:web:shipwright.example#key-1",
        created="2025-01-31T12:00:00Z",
    )

    assert signing.verify(signed, public_key=key.public_key())
    assert '"uH4sI' in signing.canonicalize(credential)


def test_a_status_list_entry_points_at_its_bit():
    assert status_list.status_list_entry(status_list_url="https://s.example/status/1", index=0) == {
        "id": "https://s.example/status/1#0",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "0",
        "statusListCredential": "https://s.example/status/1",
    }

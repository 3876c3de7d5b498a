/*
 * acmechal.c - see acmechal.h.
 */
#include "acmechal.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TOKEN_CAP 256   /* a token, NUL included (acmewire checks them shorter) */
#define KEYAUTH_CAP 320 /* token "." 43-character thumbprint */
#define NAME_CAP 256

typedef struct http_answer {
    char token[TOKEN_CAP];     /* "" = free slot */
    char keyauth[KEYAUTH_CAP]; /* the body served */
} http_answer_t;

typedef struct alpn_answer {
    char name[NAME_CAP]; /* "" = free slot; compared case-insensitively */
    X509 *cert;          /* owns a reference */
    EVP_PKEY *key;       /* owns a reference */
} alpn_answer_t;

struct acmechal {
    pthread_mutex_t lock;             /* guards both tables */
    http_answer_t http[ACMECHAL_MAX]; /* HTTP-01 answers */
    alpn_answer_t alpn[ACMECHAL_MAX]; /* TLS-ALPN-01 answers */
};

acmechal_t *acmechal_new(void)
{
    acmechal_t *c = calloc(1, sizeof(*c));
    if (c)
        pthread_mutex_init(&c->lock, NULL);
    return c;
}

void acmechal_free(acmechal_t *c)
{
    if (!c)
        return;
    acmechal_clear(c);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int acmechal_set_http01(acmechal_t *c, const char *token, const char *key_authorization)
{
    if (!token[0] || strlen(token) >= TOKEN_CAP || strlen(key_authorization) >= KEYAUTH_CAP)
        return -1;
    int rc = -1;
    pthread_mutex_lock(&c->lock);
    http_answer_t *slot = NULL;
    for (int i = 0; i < ACMECHAL_MAX; i++) {
        if (!strcmp(c->http[i].token, token)) {
            slot = &c->http[i];
            break;
        }
        if (!slot && !c->http[i].token[0])
            slot = &c->http[i];
    }
    if (slot) {
        strcpy(slot->token, token);
        strcpy(slot->keyauth, key_authorization);
        rc = 0;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int acmechal_set_tlsalpn01(acmechal_t *c, const char *name, X509 *cert, EVP_PKEY *key)
{
    if (!name[0] || strlen(name) >= NAME_CAP)
        return -1;
    X509 *old_cert = NULL;
    EVP_PKEY *old_key = NULL;
    int rc = -1;
    pthread_mutex_lock(&c->lock);
    alpn_answer_t *slot = NULL;
    for (int i = 0; i < ACMECHAL_MAX; i++) {
        if (!strcasecmp(c->alpn[i].name, name)) {
            slot = &c->alpn[i];
            break;
        }
        if (!slot && !c->alpn[i].name[0])
            slot = &c->alpn[i];
    }
    if (slot && X509_up_ref(cert) == 1) {
        if (EVP_PKEY_up_ref(key) == 1) {
            old_cert = slot->cert;
            old_key = slot->key;
            strcpy(slot->name, name);
            slot->cert = cert;
            slot->key = key;
            rc = 0;
        } else {
            old_cert = cert; /* drop the reference just taken */
        }
    }
    pthread_mutex_unlock(&c->lock);
    X509_free(old_cert);
    EVP_PKEY_free(old_key);
    return rc;
}

void acmechal_clear(acmechal_t *c)
{
    alpn_answer_t old[ACMECHAL_MAX];
    pthread_mutex_lock(&c->lock);
    memcpy(old, c->alpn, sizeof(old));
    memset(c->alpn, 0, sizeof(c->alpn));
    memset(c->http, 0, sizeof(c->http));
    pthread_mutex_unlock(&c->lock);
    for (int i = 0; i < ACMECHAL_MAX; i++) { /* frees outside the lock */
        X509_free(old[i].cert);
        EVP_PKEY_free(old[i].key);
    }
}

long acmechal_http01(acmechal_t *c, const char *token, size_t len, char *out, size_t cap)
{
    long n = -1;
    if (len == 0 || len >= TOKEN_CAP)
        return -1;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < ACMECHAL_MAX; i++) {
        const http_answer_t *a = &c->http[i];
        if (a->token[0] && strlen(a->token) == len && !memcmp(a->token, token, len)) {
            size_t kl = strlen(a->keyauth);
            if (kl < cap) {
                memcpy(out, a->keyauth, kl + 1);
                n = (long)kl;
            }
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return n;
}

int acmechal_tlsalpn01(acmechal_t *c, const char *name, X509 **cert, EVP_PKEY **key)
{
    int rc = -1;
    *cert = NULL;
    *key = NULL;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < ACMECHAL_MAX; i++) {
        alpn_answer_t *a = &c->alpn[i];
        if (a->name[0] && !strcasecmp(a->name, name)) {
            if (X509_up_ref(a->cert) == 1) {
                if (EVP_PKEY_up_ref(a->key) == 1) {
                    *cert = a->cert;
                    *key = a->key;
                    rc = 0;
                } else {
                    X509_free(a->cert); /* the table still holds its own */
                }
            }
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

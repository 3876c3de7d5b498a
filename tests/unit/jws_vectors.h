/*
 * jws_vectors.h - tokens minted by Node.js crypto (OpenSSL underneath, but not
 * our code: headers, base64url, JOSE r||s and PSS parameters are its own),
 * for the algorithms RFC 7515 and RFC 8037 give no example of. Generated once
 * with crypto.generateKeyPairSync and crypto.sign (RSA-2048 and P-384;
 * PSS with RSA_PSS_SALTLEN_DIGEST; ECDSA with dsaEncoding ieee-p1363).
 * Payload: {"sub":"node","n":1}. The JWK forms are what jwks_test parses.
 */
#ifndef COURANT_JWS_VECTORS_H
#define COURANT_JWS_VECTORS_H

static const char node_rsa_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                                   "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEApaR91p8kfNkRbO+Eh7V/\n"
                                   "z8Hf1pZVuK323+nxrr9wWIibCds1C87AKGhopyWRl1O9/IgVmgdYf+hwe4ss4MV6\n"
                                   "Ui+4XYh12JYJYPcxUwVX/TUEa7PuyRT+JY3kSaNK1wMzNsB302mc0XqGvVFDZHAj\n"
                                   "ndORCVqJlyGs93FZJidPtTXZ+RG0UUWsg1vpdBhuw/ZDk92T/UpNWNwPew4VxDuE\n"
                                   "t0C+OrIpB8isvU0tKsSS6Ogb0pdRLjSo6YylWObYkTci2fnzM82hjfi/p9m/X8xJ\n"
                                   "wKQMsoTUNuuXPGzYBtuO4KiC/vy9zWYoEtCJaoK0giw29CVeh01ozdM5qd3fDEyY\n"
                                   "2wIDAQAB\n"
                                   "-----END PUBLIC KEY-----\n";
static const char node_p384_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                                    "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEnnbwChKaCq8yJIF0WCZ4IxJEN4rxtXh7\n"
                                    "O+xeDfTU6oknzXe3sXJ2HMILqE05gtRa6kO1bV5KS5XJz+v7AwmgvZwHM+fpBKca\n"
                                    "+JBL04camNxPtkg4EQx3KRcq2uC+df75\n"
                                    "-----END PUBLIC KEY-----\n";
static const struct {
    jws_alg_t alg;
    const char *token;
} node_tokens[] = {
    {JWS_RS384, "eyJhbGciOiJSUzM4NCIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJub2RlIiwibiI6MX0.eDf9GJ16T2WKSyyWFqr3I_R_"
                "fCkUx3KYrVoHLY-iLOKn4jUSAWYEeFn82bUkWb52UYoOWgIH2kRuTpv-E6FSRD65C-nNt3_KqicrgYEgllviZF0g_"
                "1XFN81u2WS2WYhZ_Cncn4xfBzeGKz0dNxqsJLT3lA1bkU7J_asn_UG-depnbvIeXzC4aPMHSBj5DgM9jCdE9chO9-"
                "0zckWQdnwSM3Vz_rVIn9jEKbUHtkL7W5XL5HXFOEJ0Q7cSFZ6RA8X4FPAtvcdUFKKCpDYQr1DlSYs4Xl-"
                "gyacqBvNdONv2z54Bj-cKjxXoUjuyh4undKF7Nqe03Iu4J_HaV8vWgAKJbg"},
    {JWS_RS512, "eyJhbGciOiJSUzUxMiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJub2RlIiwibiI6MX0."
                "JIRKCiQO8hEmSEHKtxFge1J6eSZjpa556kzqdxbMx6zZIIa83nV8xg2c2qT2nphZINYboAIHHLVtZF0P0EFPqph7piuN"
                "r-s6EzxqGPKzxaRinORujMz8nNO-srR6E3_1LI0YtpC3ggr5YDrQtG1QuxRuQf_ll7kfuuxo_"
                "ED4uCNtihci6eT82doBzpDpUkwchjwBH1pRRNrgzUTb-HLTm4KTlyV9t1QhwMpUBf7ohdUU592yBx8nXveQziMwB_"
                "W01FPviYhq-2bFIogFVzrjqTctTfUaVaMDSCx4gl4OPgbeGfOTvlZjSxacAyuvUZ_hISy-xZWfRND7gMT90b-pPQ"},
    {JWS_PS256, "eyJhbGciOiJQUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJub2RlIiwibiI6MX0."
                "Dq2sf7K4gI4EfwD8ogZyMHg0XjQ9nllPCl3t9rjyyCBWn-N5Fl3QcJzNjG5nekr4udxygri2qa-HajllB9H-"
                "FamghZ6xoOXI2xbRdQyvHUQjkSfH_Xu_n2Td9Z8ylgnA1tqpq3C18KvYUk1uThi41mjgCBWpurMOn6r6b1Qm_"
                "D8wVR6fZd5tAFqp0ShdNJKnyfuUo9ALwoa3wSGDrGNff4bC6AFITDwhSOdW4aQF6NVxhaJJVx9TFLlQWvM4lYEfk93Pu"
                "5gA2eXH69_mmAXkMwpVZL0qunQdziAHVlhNpWvo10PRXsCRrRtZbrfq9-e97n2qCsZcFfZPjD4os6zrbw"},
    {JWS_PS384, "eyJhbGciOiJQUzM4NCIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJub2RlIiwibiI6MX0."
                "LqT0LRPuMnfNqGpQOYTa0wV7NiiL5pY6lz2rfLHsINW-ZNqhllodpvwt2s5ZrL_1BjUlxhfe_"
                "5MDjvyrtRTI0TnMXdLGjRsULbsFNjC8mvKqAdKcvnzwybBtWO7aKpOF_"
                "07HmbY1p6wMJI6mw1AsVynEc4gdwOuDqzCqBQmIT5kOcmKPDVvhrEpU9wBH5C2HM8X5H5jOnR-aiTVItwFUt-"
                "nGXxa7uPpgR6zhANu3tJpy9ObYJ83KdrPai_cG1sPRXS3PMnbPj4QM7T6nCzXy4F_x9iizo8btmHAodDj_"
                "HW9srvjp3pMrl4OPDVCyZ8ZQvNZ_9f-2kcsnvIgPBXT4Dw"},
    {JWS_PS512,
     "eyJhbGciOiJQUzUxMiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJub2RlIiwibiI6MX0.DdiSA-"
     "r0CQTOoZUBKEBQ12XIyZ3vtTX1WrOGxmGu32zYcDSwxIFs_bK5VgZtkRKuZi5VhUgyQb_Kc-lFby5y3pgZXlzNPxg7oq-"
     "b6e8CWN4MtLfEzCcUevLESn8WLFrx9EwPZRx3JFmzF3MxbNybeUjWveV2bowok-FNbsNHYO_"
     "bmRiJKfqeHTipR5yY92tuAdXhpNbVdWpWWqThngP25hfK9aTlzzQm0mnsyRfZ2tUWRdzCB75dtIYwJa3zGetjaMYBuJON-"
     "SLDe9rtggnXciV-ljVSonPG8ak5t0pLnmrtOF8HrPJWRHp2OXlWtSAC_68woeEv8aDdazvFsO-ovQ"},
    {JWS_ES384, "eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJub2RlIiwibiI6MX0.wd_"
                "cCRweqXhQmD3ek7EmVc8RgA0r5OodgK3wAz8lWqLZ0LmzyjDf_CJ0TR9KBpf9-KhSHGgLniQhL4_"
                "ed7zhcbs7des20EmRx0Dfjzd6CoMzI7IRzWzDyPxVrLED7WUd"},
};

static const char node_rsa_jwk[] =
    "{\"kty\":\"RSA\",\"n\":\"paR91p8kfNkRbO-Eh7V_z8Hf1pZVuK323-nxrr9wWIibCds1C87AKGhopyWRl1O9_IgVmgdYf-"
    "hwe4ss4MV6Ui-4XYh12JYJYPcxUwVX_TUEa7PuyRT-JY3kSaNK1wMzNsB302mc0XqGvVFDZHAjndORCVqJlyGs93FZJidPtTXZ-"
    "RG0UUWsg1vpdBhuw_ZDk92T_UpNWNwPew4VxDuEt0C-OrIpB8isvU0tKsSS6Ogb0pdRLjSo6YylWObYkTci2fnzM82hjfi_p9m_"
    "X8xJwKQMsoTUNuuXPGzYBtuO4KiC_vy9zWYoEtCJaoK0giw29CVeh01ozdM5qd3fDEyY2w\",\"e\":\"AQAB\"}";
static const char node_p384_jwk[] =
    "{\"kty\":\"EC\",\"x\":\"nnbwChKaCq8yJIF0WCZ4IxJEN4rxtXh7O-xeDfTU6oknzXe3sXJ2HMILqE05gtRa\",\"y\":"
    "\"6kO1bV5KS5XJz-v7AwmgvZwHM-fpBKca-JBL04camNxPtkg4EQx3KRcq2uC-df75\",\"crv\":\"P-384\"}";

#endif

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Security identities: the numbers the ipcache maps prefixes to and the
 * policy maps are keyed by. Reserved identities are Cilium's; label-based
 * identities start at 256, node-local CIDR identities at 1 << 24.
 */
#ifndef DP_IDENTITY_H
#define DP_IDENTITY_H

#define DP_ID_UNKNOWN	     0 /* also "any identity" in policy keys */
#define DP_ID_HOST	     1
#define DP_ID_WORLD	     2
#define DP_ID_UNMANAGED	     3
#define DP_ID_HEALTH	     4
#define DP_ID_INIT	     5
#define DP_ID_REMOTE_NODE    6
#define DP_ID_KUBE_APISERVER 7
#define DP_ID_INGRESS	     8

#define DP_ID_FIRST_LABELS 256
#define DP_ID_FIRST_CIDR   (1 << 24)

#endif /* DP_IDENTITY_H */

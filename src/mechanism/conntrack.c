/* conntrack.c: forgetting the connections of an address that is about to
 * be given to another VM.
 *
 * The output chains of `ip banger` and `ip6 banger` check a host user
 * against a VM address's owner only when a connection starts: packets of
 * an established one pass, in either direction, without a look at who
 * sends them. That is right while the address is its VM's, and wrong the
 * moment it is another's: a flow kept alive across a VM's end (by its
 * owner on the host, by a server its guest talked to through NAT, or
 * through a guest-opened flow a host user answers) would reach whoever's
 * VM gets the address next. Checking the owner on every packet instead
 * closes only the host's side (a reply to a guest-opened flow has to
 * pass whoever sends it: the host's resolver, a user's dev server), so
 * the entries go with the address: every entry naming one of a tap's
 * addresses, as source or destination, in either direction.
 *
 * Deleting conntrack entries is a ctnetlink request and nothing else (nft
 * cannot), so the mechanism speaks it through libnl-nf-3, the netfilter
 * part of the libnl it already uses for links and addresses. */
#include <arpa/inet.h>
#include <sys/socket.h>

#include <netlink/netlink.h>
#include <netlink/netfilter/ct.h>
#include <netlink/netfilter/nfnl.h>

#include "bg-error.h"
#include "conntrack.h"
#include "netlink.h"

/* An address as the bytes ctnetlink reports. */
typedef struct {
  int    family;
  guint8 bytes[16];
} Address;

typedef struct {
  GArray    *addresses;   /* of Address */
  GPtrArray *found;       /* of struct nfnl_ct *, to delete after the dump */
} Dump;

static gboolean
is_one_of (GArray         *addresses,
           struct nl_addr *a)
{
  if (a == NULL)
    return FALSE;
  for (guint i = 0; i < addresses->len; i++)
    {
      const Address *w = &g_array_index (addresses, Address, i);
      gsize len = w->family == AF_INET ? 4 : 16;

      if (nl_addr_get_family (a) == w->family && nl_addr_get_len (a) == len &&
          memcmp (nl_addr_get_binary_addr (a), w->bytes, len) == 0)
        return TRUE;
    }
  return FALSE;
}

static int
on_entry (struct nl_msg *msg,
          void          *data)
{
  Dump *dump = data;
  struct nfnl_ct *ct = NULL;

  if (nfnlmsg_ct_parse (nlmsg_hdr (msg), &ct) < 0)
    return NL_SKIP;
  for (int reply = 0; reply <= 1; reply++)
    if (is_one_of (dump->addresses, nfnl_ct_get_src (ct, reply)) ||
        is_one_of (dump->addresses, nfnl_ct_get_dst (ct, reply)))
      {
        g_ptr_array_add (dump->found, g_steal_pointer (&ct));
        return NL_OK;
      }
  nfnl_ct_put (ct);
  return NL_OK;
}

/* Deletes every conntrack entry that names one of the @n @addresses
 * (IPv4 or IPv6 text; NULLs skipped), in the caller's network
 * namespace. One dump reads the table (keeping only the entries that
 * match), then each match is deleted; one that ended meanwhile is gone
 * already. */
gboolean
bg_conntrack_forget (const char * const  *addresses,
                     guint                n,
                     GError             **error)
{
  g_autoptr(GArray) wanted = g_array_new (FALSE, TRUE, sizeof (Address));
  g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func ((GDestroyNotify) nfnl_ct_put);
  g_autoptr(BgNlSock) sk = NULL;
  Dump dump = { wanted, found };
  int err;

  for (guint i = 0; i < n; i++)
    {
      Address a = { 0 };

      if (addresses[i] == NULL)
        continue;
      if (inet_pton (AF_INET, addresses[i], a.bytes) == 1)
        a.family = AF_INET;
      else if (inet_pton (AF_INET6, addresses[i], a.bytes) == 1)
        a.family = AF_INET6;
      else
        continue;
      g_array_append_val (wanted, a);
    }
  if (wanted->len == 0)
    return TRUE;

  sk = nl_socket_alloc ();
  if (sk == NULL)
    {
      g_set_error_literal (error, BG_ERROR, BG_ERROR_FAILED, "out of memory for a netlink socket");
      return FALSE;
    }
  if ((err = nfnl_connect (sk)) < 0)
    {
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot open ctnetlink: %s", nl_geterror (err));
      return FALSE;
    }
  nl_socket_modify_cb (sk, NL_CB_VALID, NL_CB_CUSTOM, on_entry, &dump);
  /* A dump the kernel's table changed under is redone (entries come and
   * go all the time); a few tries are plenty. */
  for (guint tries = 0;; tries++)
    {
      if ((err = nfnl_ct_dump_request (sk)) >= 0)
        err = nl_recvmsgs_default (sk);
      if (err >= 0)
        break;
      g_ptr_array_set_size (found, 0);
      if (err != -NLE_DUMP_INTR || tries == 4)
        {
          g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot read the connection tracking table: %s",
                       nl_geterror (err));
          return FALSE;
        }
    }
  for (guint i = 0; i < found->len; i++)
    if ((err = nfnl_ct_del (sk, found->pdata[i], 0)) < 0 && err != -NLE_OBJ_NOTFOUND)
      {
        g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "cannot delete a connection tracking entry: %s",
                     nl_geterror (err));
        return FALSE;
      }
  return TRUE;
}

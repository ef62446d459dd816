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
 * addresses, as source or destination, in either direction, when the
 * tap goes (network.c says when else).
 *
 * Deleting conntrack entries is a ctnetlink request and nothing else (nft
 * cannot), so the mechanism speaks it through libnl-nf-3, the netfilter
 * part of the libnl it already uses for links and addresses. Either way
 * it is one dump of the whole table: the kernel walks every bucket of
 * its hash, entries or not (about 2 ms here), which is why it is done
 * when an address is freed, not again when it is given. */
#include <arpa/inet.h>
#include <sys/socket.h>

#include <netlink/netlink.h>
#include <netlink/netfilter/ct.h>
#include <netlink/netfilter/nfnl.h>

#include "bg-error.h"
#include "conntrack.h"
#include "netlink.h"

/* An address, or a prefix of @bits, as the bytes ctnetlink reports. */
typedef struct {
  int    family;
  guint8 bytes[16];
  guint  bits;
} Address;

typedef struct {
  GArray    *addresses;   /* of Address: what goes */
  GArray    *except;      /* of Address: what stays, though in one of them */
  GPtrArray *found;       /* of struct nfnl_ct *, to delete after the dump */
} Dump;

static gboolean
in_prefix (const Address  *w,
           struct nl_addr *a)
{
  gsize len = w->family == AF_INET ? 4 : 16;
  const guint8 *b;
  guint whole = w->bits / 8, rest = w->bits % 8;

  if (nl_addr_get_family (a) != w->family || nl_addr_get_len (a) != len)
    return FALSE;
  b = nl_addr_get_binary_addr (a);
  if (memcmp (b, w->bytes, whole) != 0)
    return FALSE;
  return rest == 0 || ((b[whole] ^ w->bytes[whole]) & (0xff << (8 - rest)) & 0xff) == 0;
}

static gboolean
is_one_of (GArray         *addresses,
           struct nl_addr *a)
{
  if (a == NULL || addresses == NULL)
    return FALSE;
  for (guint i = 0; i < addresses->len; i++)
    if (in_prefix (&g_array_index (addresses, Address, i), a))
      return TRUE;
  return FALSE;
}

static gboolean
goes (Dump           *dump,
      struct nl_addr *a)
{
  return is_one_of (dump->addresses, a) && !is_one_of (dump->except, a);
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
    if (goes (dump, nfnl_ct_get_src (ct, reply)) || goes (dump, nfnl_ct_get_dst (ct, reply)))
      {
        g_ptr_array_add (dump->found, g_steal_pointer (&ct));
        return NL_OK;
      }
  nfnl_ct_put (ct);
  return NL_OK;
}

/* Appends @text, an address or (@prefixes) a prefix "ADDRESS/BITS",
 * IPv4 or IPv6; anything else is skipped. */
static void
append_address (GArray     *to,
                const char *text,
                gboolean    prefixes)
{
  g_autofree char *copy = g_strdup (text);
  char *slash = prefixes ? strchr (copy, '/') : NULL;
  Address a = { 0 };
  guint64 bits = 0;

  if (slash != NULL)
    {
      *slash = '\0';
      if (!g_ascii_string_to_unsigned (slash + 1, 10, 0, 128, &bits, NULL))
        return;
    }
  if (inet_pton (AF_INET, copy, a.bytes) == 1)
    a.family = AF_INET;
  else if (inet_pton (AF_INET6, copy, a.bytes) == 1)
    a.family = AF_INET6;
  else
    return;
  a.bits = slash != NULL ? (guint) bits : (a.family == AF_INET ? 32 : 128);
  if (a.bits > (a.family == AF_INET ? 32u : 128u))
    return;
  g_array_append_val (to, a);
}

/* One dump reads the table (keeping only the entries that match), then
 * each match is deleted; one that ended meanwhile is gone already. */
static gboolean
forget (GArray   *addresses,
        GArray   *except,
        GError  **error)
{
  g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func ((GDestroyNotify) nfnl_ct_put);
  g_autoptr(BgNlSock) sk = NULL;
  Dump dump = { addresses, except, found };
  int err;

  if (addresses->len == 0)
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

/* Deletes every conntrack entry that names one of the @n @addresses
 * (IPv4 or IPv6 text; NULLs skipped), in the caller's network
 * namespace. */
gboolean
bg_conntrack_forget (const char * const  *addresses,
                     guint                n,
                     GError             **error)
{
  g_autoptr(GArray) wanted = g_array_new (FALSE, TRUE, sizeof (Address));

  for (guint i = 0; i < n; i++)
    if (addresses[i] != NULL)
      append_address (wanted, addresses[i], FALSE);
  return forget (wanted, NULL, error);
}

/* Deletes every conntrack entry that names an address of one of the
 * @prefixes ("ADDRESS/BITS", NULL-terminated) but none of @keep (NULL,
 * or addresses, NULL-terminated). */
gboolean
bg_conntrack_forget_prefixes (const char * const  *prefixes,
                              const char * const  *keep,
                              GError             **error)
{
  g_autoptr(GArray) wanted = g_array_new (FALSE, TRUE, sizeof (Address));
  g_autoptr(GArray) except = g_array_new (FALSE, TRUE, sizeof (Address));

  for (guint i = 0; prefixes[i] != NULL; i++)
    append_address (wanted, prefixes[i], TRUE);
  for (guint i = 0; keep != NULL && keep[i] != NULL; i++)
    append_address (except, keep[i], FALSE);
  return forget (wanted, except, error);
}

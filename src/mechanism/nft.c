/* nft.c: NAT and forwarding rules in banger's own table (`ip banger`),
 * through libnftables, in-process and applied as one atomic transaction;
 * the host's own rules are never touched, and teardown is dropping that
 * one table. The table carries a comment naming the bridge and subnet it
 * was made for, so "in place" means "in place for this network", and a
 * flushed or stale table is simply made again. */
#include <nftables/libnftables.h>

#include "bg-error.h"
#include "nft.h"

#define NFT_TABLE "banger"

static gboolean
nft_run (const char  *script,
         char       **output,
         GError     **error)
{
  struct nft_ctx *nft = nft_ctx_new (NFT_CTX_DEFAULT);
  gboolean ok;

  nft_ctx_buffer_output (nft);
  nft_ctx_buffer_error (nft);
  ok = nft_run_cmd_from_buffer (nft, script) == 0;
  if (!ok)
    {
      g_autofree char *msg = g_strdup (nft_ctx_get_error_buffer (nft));
      g_set_error (error, BG_ERROR, BG_ERROR_FAILED, "nftables refused the change: %s",
                   g_strstrip (msg));
    }
  else if (output)
    *output = g_strdup (nft_ctx_get_output_buffer (nft));
  nft_ctx_free (nft);
  return ok;
}

static char *
marker (const char *bridge,
        const char *subnet)
{
  return g_strdup_printf ("\"banger bridge=%s subnet=%s\"", bridge, subnet);
}

/* The table exists, is the one for this bridge and subnet, and still has
 * its masquerade rule (a flush keeps a table's comment, not its rules). */
gboolean
bg_nft_in_place (const char *bridge,
                 const char *subnet)
{
  g_autofree char *out = NULL;
  g_autofree char *want = marker (bridge, subnet);

  if (!nft_run ("list table ip " NFT_TABLE, &out, NULL))
    return FALSE;
  return strstr (out, want) != NULL && strstr (out, "masquerade") != NULL;
}

/* The subnet banger's table says it was made for, if it names @bridge:
 * how a bridge the registry lost is known to be banger's. */
char *
bg_nft_marked_subnet (const char *bridge)
{
  g_autofree char *out = NULL;
  g_autofree char *want = g_strdup_printf ("\"banger bridge=%s subnet=", bridge);
  const char *at, *end;

  if (!nft_run ("list table ip " NFT_TABLE, &out, NULL) || (at = strstr (out, want)) == NULL)
    return NULL;
  at += strlen (want);
  end = strchr (at, '"');
  return end ? g_strndup (at, end - at) : NULL;
}

/* Replaces banger's table in one transaction: "add table" (a no-op if it
 * exists) then "delete table" then the new table, so there is never a
 * moment with half the rules. Everything interpolated here comes from the
 * validated system config. */
gboolean
bg_nft_apply (const char  *bridge,
              const char  *subnet,
              GError     **error)
{
  g_autofree char *comment = marker (bridge, subnet);
  g_autofree char *script = g_strdup_printf (
      "add table ip " NFT_TABLE "\n"
      "delete table ip " NFT_TABLE "\n"
      "table ip " NFT_TABLE " {\n"
      "  comment %s\n"
      "  chain postrouting {\n"
      "    type nat hook postrouting priority srcnat; policy accept;\n"
      "    ip saddr %s oifname != \"%s\" masquerade\n"
      "  }\n"
      "  chain forward {\n"
      "    type filter hook forward priority filter; policy accept;\n"
      "    iifname \"%s\" accept\n"
      "    oifname \"%s\" ct state established,related accept\n"
      "    oifname \"%s\" drop\n"
      "  }\n"
      "}\n",
      comment, subnet, bridge, bridge, bridge, bridge);

  return nft_run (script, NULL, error);
}

gboolean
bg_nft_remove (GError **error)
{
  return nft_run ("add table ip " NFT_TABLE "\ndelete table ip " NFT_TABLE "\n", NULL, error);
}

/*
 * proxy_env_table.h — which proxy a target takes for a given environment: one table read
 * by two tests, so the relay's choice is tied to curl's.
 *
 *   t_upstream.c (unit): the relay's routes (upstream_load_with) must pick the RELAY column;
 *   tests/integration/test_socks5.py: real curl, run with the same environment against
 *   loopback proxies that record who was asked, must pick the CURL column (the script
 *   reads the PROXY_ENV lines of this file with a regular expression: keep one row per
 *   line, strings without escapes).
 *
 * Columns: the target's scheme ("https": every port but 80 for the relay; "http": port
 * 80); the environment as NAME=VALUE words, where a value is A, B, C or D (a proxy; a
 * "socks5:" or "socks5h:" prefix gives its scheme, else http://), a NO_PROXY list, or
 * empty; the proxy the relay takes; the proxy curl takes (DIRECT: none). The target host
 * is console.example. Rows where the columns differ are deliberate: curl reads no
 * upper-case HTTP_PROXY (a guard for CGI programs), the relay does, as its spec says.
 */
PROXY_ENV("https", "https_proxy=A", "A", "A")
PROXY_ENV("https", "HTTPS_PROXY=A", "A", "A")
PROXY_ENV("https", "https_proxy=A HTTPS_PROXY=B", "A", "A")
PROXY_ENV("https", "https_proxy= HTTPS_PROXY=B", "B", "B")
PROXY_ENV("https", "ALL_PROXY=socks5h:A", "A", "A")
PROXY_ENV("https", "all_proxy=socks5:A", "A", "A")
PROXY_ENV("https", "all_proxy=socks5:A ALL_PROXY=B", "A", "A")
PROXY_ENV("https", "all_proxy= ALL_PROXY=socks5h:B", "B", "B")
PROXY_ENV("https", "HTTPS_PROXY=A ALL_PROXY=socks5h:B", "A", "A")
PROXY_ENV("https", "https_proxy=socks5h:A all_proxy=B", "A", "A")
PROXY_ENV("https", "https_proxy= all_proxy=socks5:B", "B", "B")
PROXY_ENV("https", "http_proxy=A", "DIRECT", "DIRECT")
PROXY_ENV("https", "http_proxy=A ALL_PROXY=socks5h:B", "B", "B")
PROXY_ENV("https", "ALL_PROXY=socks5h:A NO_PROXY=console.example", "DIRECT", "DIRECT")
PROXY_ENV("https", "all_proxy=socks5:A no_proxy=.example", "DIRECT", "DIRECT")
PROXY_ENV("https", "ALL_PROXY=A NO_PROXY=other.example", "A", "A")
PROXY_ENV("https", "HTTPS_PROXY=socks5h:A NO_PROXY=*", "DIRECT", "DIRECT")
PROXY_ENV("https", "https_proxy=A no_proxy=other.example NO_PROXY=console.example", "A", "A")
PROXY_ENV("https", "https_proxy=A no_proxy= NO_PROXY=console.example", "DIRECT", "DIRECT")
PROXY_ENV("https", "", "DIRECT", "DIRECT")
PROXY_ENV("http", "http_proxy=A", "A", "A")
PROXY_ENV("http", "http_proxy=socks5h:A HTTP_PROXY=B", "A", "A")
PROXY_ENV("http", "all_proxy=socks5h:A", "A", "A")
PROXY_ENV("http", "http_proxy= all_proxy=B", "B", "B")
PROXY_ENV("http", "https_proxy=A", "DIRECT", "DIRECT")
PROXY_ENV("http", "https_proxy=A ALL_PROXY=socks5:B", "B", "B")
PROXY_ENV("http", "http_proxy=socks5:A NO_PROXY=console.example", "DIRECT", "DIRECT")
PROXY_ENV("http", "HTTP_PROXY=A", "A", "DIRECT")
PROXY_ENV("http", "HTTP_PROXY=A ALL_PROXY=socks5h:B", "A", "B")

# shellcheck shell=bash
# bench/nchan.sh - sourced by run.sh, h2.sh and tls.sh: the nginx + nchan
# configuration they compare courant with, written once so the three
# benchmarks measure the same nchan (history 1000 events, no age limit, an
# EventSource subscriber at /sub, a publisher at /pub, one channel per ?id=).
#
# nchan_conf DIR WORKERS LISTEN_FLAGS [HTTP_LINES [SERVER_LINES]]
#   writes DIR/nginx.conf for 127.0.0.1:$PORT (nginx -p DIR -c DIR/nginx.conf)
#   LISTEN_FLAGS  listen parameters before "reuseport", each followed by a
#                 space: "", "http2 " (h2c), "ssl " (nginx takes them in any order)
#   HTTP_LINES    more directives for the http block (each line indented,
#                 ending in a newline): TLS settings, HTTP/2 limits
#   SERVER_LINES  more directives for the server block
# Needs NCHAN_SO and PORT.
nchan_conf() {
    local dir=$1 workers=$2 flags=$3 http_extra=${4:-} server_extra=${5:-}
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<CONF
load_module $NCHAN_SO;
worker_processes $workers;
worker_rlimit_nofile 20000;
daemon off;
master_process on;
user root;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 19990; use epoll; multi_accept on; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    nchan_max_reserved_memory 256M;
    nchan_message_buffer_length 1000;   # courant --history 1000
    nchan_message_timeout 0;            # courant --history-age 0
${http_extra}    server {
        listen 127.0.0.1:$PORT ${flags}reuseport;
        location = /pub { nchan_publisher; nchan_channel_id \$arg_id; }
        location = /sub {
            nchan_subscriber eventsource;
            nchan_channel_id \$arg_id;
            nchan_subscriber_first_message newest;
        }
${server_extra}    }
}
CONF
}

<?php
// A PHP front controller, one of the real routers of rca-tools' differential
// test, served by PHP's built-in server (`php -S 127.0.0.1:PORT -t php`):
// every path without a file of its own runs this script. As Symfony's
// Request::getPathInfo() does, it routes on the request path with the
// script's own name cut off the front, so `/index.php/api/crawl` (the script,
// then PATH_INFO) is routed as `/api/crawl`; then it decodes the path once,
// as Symfony's UrlMatcher does (rawurldecode).
//
// Every request gets 200 and text lines:
//     handler=bots|public
//     router=php
//     path=<the path routed on>
$uri = (string) parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$script = $_SERVER['SCRIPT_NAME'];
$path = $uri;
if (strncasecmp($path, $script, strlen($script)) === 0) {
    $path = substr($path, strlen($script));
}
$path = rawurldecode($path === '' ? '/' : $path);
$handler = preg_match('#^/api/crawl(/.*)?$#', $path) ? 'bots' : 'public';
header('Content-Type: text/plain; charset=utf-8');
echo "handler=$handler\nrouter=php\npath=" . addcslashes($path, "\0..\37\177\\") . "\n";

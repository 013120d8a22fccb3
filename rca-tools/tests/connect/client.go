// A bot in Go: one request through rca-connect with net/http's default
// transport (HTTP/2 by ALPN, the proxy from HTTPS_PROXY, the local CA from
// SSL_CERT_FILE), as a bot author would set them.
//
// usage: goclient URL
// Prints one JSON object: status, protocol, headers, body.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

func main() {
	// http.ProxyFromEnvironment never proxies requests for localhost or
	// loopback addresses, which is where the test servers are: the proxy
	// is taken from HTTPS_PROXY directly instead.
	proxy, err := url.Parse(os.Getenv("HTTPS_PROXY"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = http.ProxyURL(proxy)
	client := &http.Client{Timeout: 60 * time.Second, Transport: transport}
	response, err := client.Get(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	headers := map[string]string{}
	for name, values := range response.Header {
		headers[strings.ToLower(name)] = strings.Join(values, ", ")
	}
	out, _ := json.Marshal(map[string]interface{}{
		"status":   response.StatusCode,
		"protocol": response.Proto,
		"headers":  headers,
		"body":     string(body),
		"length":   len(body),
	})
	fmt.Println(string(out))
}

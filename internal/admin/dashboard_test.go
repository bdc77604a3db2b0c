package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/sluice-gw/sluice/internal/admin"
	"github.com/sluice-gw/sluice/internal/config"
	"github.com/sluice-gw/sluice/internal/endpoint"
	"github.com/sluice-gw/sluice/internal/gateway"
	"github.com/sluice-gw/sluice/internal/gateway/gatewaytest"
)

// chromium returns the path of Debian's chromium, skipping the test without
// it unless CI=true (CI installs it: .ci/run).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found, and CI=true: .ci/run must install it (apt-get install -y chromium)")
	}
	t.Skip("chromium not found: apt-get install -y chromium to run this test")
	return ""
}

// TestDashboardShowsDrainingEndpoint loads the admin port's dashboard in a
// real headless Chromium, driven over the DevTools protocol: the page loads
// with no console error or exception, shows both endpoints of the upstream
// as ready, and, after Cluster.SetEndpoints marks one draining, shows that
// one as draining on its next poll. A screenshot is left in the test's
// temp dir.
func TestDashboardShowsDrainingEndpoint(t *testing.T) {
	bin := chromium(t)
	a, b := gatewaytest.NewEcho(t, "a"), gatewaytest.NewEcho(t, "b")
	g := gatewaytest.Start(t, `
		upstreams:
		  shop: {endpoints: [`+a.Addr()+`, `+b.Addr()+`]}
		routes:
		  - {id: shop, uri: lb://shop, predicates: ["Path=/shop/**"]}
		`)
	gatewaytest.Get(t, g, "/shop/x") // something in the pools

	ctx, enable, problems := browser(t, bin)

	url := "http://" + g.AdminAddr() + "/"
	row := func(addr string) string { return `tr[data-endpoint="` + addr + `"]` }
	state := func(addr string) chromedp.Action[string] {
		return chromedp.Evaluate[string](`document.querySelector('` + row(addr) + ` .state')?.dataset.state || ""`)
	}
	if err := chromedp.Do(ctx, enable, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(row(b.Addr())))); err != nil {
		t.Fatalf("loading %s: %v", url, err)
	}
	if got, err := chromedp.Run(ctx, state(b.Addr())); err != nil || got != "ready" {
		t.Fatalf("endpoint %s shown as %q (%v), want ready", b.Addr(), got, err)
	}

	g.Cluster("shop").SetEndpoints([]endpoint.Spec{{Addr: a.Addr()}, {Addr: b.Addr(), Draining: true}})
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(row(b.Addr())+` .state[data-state="draining"]`))); err != nil {
		t.Fatalf("waiting for %s to show as draining: %v", b.Addr(), err)
	}
	if got, err := chromedp.Run(ctx, state(a.Addr())); err != nil || got != "ready" {
		t.Errorf("endpoint %s shown as %q (%v), want ready", a.Addr(), got, err)
	}

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "dashboard.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := os.Getenv("SLUICE_DASHBOARD_SCREENSHOT"); out != "" { // docs/dashboard.png is made this way
		os.WriteFile(out, png, 0o644)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))

	if p := problems(); len(p) > 0 {
		t.Errorf("the page logged problems:\n%s", strings.Join(p, "\n"))
	}
}

// browser starts a headless Chromium for t. enable turns on the console and
// log events of a page; problems returns the errors and warnings logged.
func browser(t *testing.T, bin string) (ctx context.Context, enable chromedp.Action[chromedp.Void], problems func() []string) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0],
		chromedp.ExecPath(bin), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)

	var mu sync.Mutex
	var logged []string
	// Listen starts the browser, on a context without a deadline (the
	// browser lives as long as it).
	err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				logged = append(logged, "console "+string(ev.Type)+": "+argsText(ev.Args))
			}
		case *cdplog.EventEntryAdded: // network errors, CSP violations
			if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Level == cdplog.EntryLevelWarning {
				logged = append(logged, "log "+string(ev.Entry.Level)+": "+ev.Entry.Text+" "+ev.Entry.URL)
			}
		case *runtime.EventExceptionThrown:
			logged = append(logged, "exception: "+ev.ExceptionDetails.Text+" "+exceptionText(ev.ExceptionDetails))
		}
	})
	if err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	enable = func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		for _, c := range []cdp.Command[cdp.Empty, cdp.Empty]{cdplog.Enable, runtime.Enable} {
			if _, err := cdp.Call(ctx, tg, c, cdp.Empty{}); err != nil {
				return chromedp.Void{}, err
			}
		}
		return chromedp.Void{}, nil
	}

	return ctx, enable, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(logged)
	}
}

// TestDashboardAsksForTheAdminToken: with an admin token set, the page (it
// holds no data) loads in a real Chromium, asks for the token, and once it
// is typed shows the endpoints, fetched with it as a bearer token; the data
// itself stays refused without the token.
func TestDashboardAsksForTheAdminToken(t *testing.T) {
	bin := chromium(t)
	a := gatewaytest.NewEcho(t, "a")
	const secret = "s3cret-token"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := gatewaytest.Start(t, `
		upstreams:
		  shop: {endpoints: [`+a.Addr()+`]}
		routes:
		  - {id: shop, uri: lb://shop, predicates: ["Path=/shop/**"]}
		`, gatewaytest.WithAdmin("token_file: "+tokenFile+"\n"))
	if resp, err := http.Get("http://" + g.AdminAddr() + "/dashboard.json"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/dashboard.json without the token: %v %v, want 401", resp, err)
	}
	ctx, enable, problems := browser(t, bin)
	row := `tr[data-endpoint="` + a.Addr() + `"]`
	err := chromedp.Do(ctx, enable, chromedp.Navigate("http://"+g.AdminAddr()+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#login`)),
		chromedp.SendKeys(chromedp.CSS(`#login input[name=token]`), secret),
		chromedp.Click(chromedp.CSS(`#login button`)),
		chromedp.WaitVisible(chromedp.CSS(row)))
	if err != nil {
		t.Fatalf("logging in to the dashboard: %v", err)
	}
	for _, p := range problems() {
		if !strings.Contains(p, "401") { // the first fetch, refused without the token
			t.Errorf("the page logged: %s", p)
		}
	}
}

func argsText(args []*runtime.RemoteObject) string {
	var parts []string
	for _, a := range args {
		if len(a.Value) > 0 {
			parts = append(parts, string(a.Value))
		} else {
			parts = append(parts, a.Description)
		}
	}
	return strings.Join(parts, " ")
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d.Exception != nil {
		return d.Exception.Description
	}
	return ""
}

// TestDashboardJSON checks the documented JSON endpoint: an endpoint's state,
// the listener's connections and the routes, from a running gateway.
func TestDashboardJSON(t *testing.T) {
	a := gatewaytest.NewEcho(t, "a")
	g := gatewaytest.Start(t, `
		upstreams:
		  shop: {endpoints: [`+a.Addr()+`]}
		routes:
		  - {id: shop, uri: lb://shop, predicates: ["Path=/shop/**"]}
		`)
	gatewaytest.Get(t, g, "/shop/x")
	g.Cluster("shop").SetEndpoints([]endpoint.Spec{{Addr: a.Addr(), Draining: true}})
	resp, err := http.Get("http://" + g.AdminAddr() + "/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d admin.Dashboard
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.DrainPhase != "serving" || len(d.Listeners) == 0 || d.Listeners[0].Connections["open"] < 1 {
		t.Errorf("drain phase %q, listeners %+v", d.DrainPhase, d.Listeners)
	}
	if len(d.Upstreams) != 1 || len(d.Upstreams[0].Endpoints) != 1 || d.Upstreams[0].Endpoints[0].State != "draining" ||
		d.Upstreams[0].Endpoints[0].Opened < 1 {
		t.Errorf("upstreams %+v, want shop with %s draining, one connection opened", d.Upstreams, a.Addr())
	}
	if routes, _ := d.Routes.([]any); len(routes) != 1 {
		t.Errorf("routes %v", d.Routes)
	}
}

// TestDashboardEjectionsAndReloads checks that /dashboard.json says until
// when an ejected endpoint is out, and lists a rejected reload with its
// FILE:LINE:COL problems after a successful one.
func TestDashboardEjectionsAndReloads(t *testing.T) {
	good := gatewaytest.NewEcho(t, "good")
	dead := gatewaytest.ClosedAddr(t)
	file := filepath.Join(t.TempDir(), "sluice.yaml")
	body := gatewaytest.Header("", 0) + gatewaytest.Dedent(`
		upstreams:
		  shop:
		    endpoints: [`+dead+`, `+good.Addr()+`]
		    outlier_detection: {consecutive_failures: 1, base_ejection_time: 1m}
		routes:
		  - {id: shop, uri: lb://shop, predicates: ["Path=/shop/**"]}
		`)
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.StartConfig(file, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gatewaytest.Stop(g) })
	for range 4 { // round robin: the dead endpoint is tried, fails, is ejected
		gatewaytest.Get(t, g, "/shop/x")
	}
	if err := g.Reload(); err != nil {
		t.Fatalf("reload of the same file: %v", err)
	}
	if err := os.WriteFile(file, []byte(body+"routes_typo: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if g.Reload() == nil {
		t.Fatal("a reload of an invalid file succeeded")
	}

	d := dashboardJSON(t, g.AdminAddr())
	var ep *admin.Endpoint
	for i, e := range d.Upstreams[0].Endpoints {
		if e.Address == dead {
			ep = &d.Upstreams[0].Endpoints[i]
		}
	}
	if ep == nil || ep.State != "ejected" || ep.EjectedUntil == nil || time.Until(*ep.EjectedUntil) < 30*time.Second {
		t.Errorf("dead endpoint %+v; want ejected, until about a minute from now", ep)
	}
	rec := d.Reloads.Recent
	if len(rec) != 2 || rec[0].Result != "failure" || rec[1].Result != "success" {
		t.Fatalf("recent reloads %+v; want a failure after a success", rec)
	}
	if len(rec[0].Errors) != 1 || !strings.HasPrefix(rec[0].Errors[0], file+":") || !strings.Contains(rec[0].Errors[0], "routes_typo") {
		t.Errorf("errors of the rejected reload %q; want one, at %s:LINE:COL", rec[0].Errors, file)
	}
}

func dashboardJSON(t *testing.T, adminAddr string) admin.Dashboard {
	t.Helper()
	resp, err := http.Get("http://" + adminAddr + "/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d admin.Dashboard
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

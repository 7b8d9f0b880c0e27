package main

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
)

// makePhotos returns n generated "photos": SVG landscapes of random colours
// as data URLs, a few kilobytes each, the kind of bulky, render-once data a
// LiveView tempAssigns so the server does not keep it.
func makePhotos(n int) []string {
	photos := make([]string, n)
	for i := range photos {
		photos[i] = "data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString([]byte(photoSVG(i)))
	}
	return photos
}

func photoSVG(i int) string {
	hue := rand.IntN(360)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="160" height="120" viewBox="0 0 160 120">`)
	fmt.Fprintf(&b, `<defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1">`+
		`<stop offset="0" stop-color="hsl(%d,70%%,75%%)"/><stop offset="1" stop-color="hsl(%d,60%%,92%%)"/>`+
		`</linearGradient></defs><rect width="160" height="120" fill="url(#sky)"/>`, hue, (hue+40)%360)
	fmt.Fprintf(&b, `<circle cx="%d" cy="%d" r="%d" fill="hsl(%d,90%%,60%%)"/>`, 20+rand.IntN(120), 15+rand.IntN(30), 8+rand.IntN(10), (hue+180)%360)
	for range 12 {
		// A ridge of hills: the bulk of each photo's bytes.
		x, w, h := rand.IntN(160), 20+rand.IntN(60), 20+rand.IntN(50)
		fmt.Fprintf(&b, `<path d="M%d 120 Q%d %d %d 120 Z" fill="hsl(%d,%d%%,%d%%)" fill-opacity="0.8"/>`,
			x-w, x, 120-2*h, x+w, (hue+90+rand.IntN(60))%360, 30+rand.IntN(40), 25+rand.IntN(30))
	}
	fmt.Fprintf(&b, `<text x="8" y="112" font-family="sans-serif" font-size="12" fill="#fff">photo %d</text></svg>`, i+1)
	return b.String()
}

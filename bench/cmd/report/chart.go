package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// panel is one grouped bar chart: groups along x, one bar per series in each group.
type panel struct {
	title  string
	unit   string
	groups []string
	series []string
	values [][]float64 // [group][series]; NaN or <= 0 draws no bar
}

var palette = map[string]color.RGBA{
	"direct":         {0x9e, 0x9e, 0x9e, 0xff},
	"mizuchi-splice": {0xd6, 0x27, 0x28, 0xff},
	baseTarget:       {0x8c, 0x56, 0x4b, 0xff},
	"mizuchi-copy":   {0xff, 0x98, 0x96, 0xff},
	"nginx":          {0x2c, 0xa0, 0x2c, 0xff},
	"splicerelay":    {0x1f, 0x77, 0xb4, 0xff},
	"goproxy":        {0x94, 0x67, 0xbd, 0xff},
	"haproxy":        {0xff, 0x7f, 0x0e, 0xff},
	// the by-path panels' series
	"mizuchi-uploadr": {0xd6, 0x27, 0x28, 0xff},
	"HAProxy":         {0xff, 0x7f, 0x0e, 0xff},
	"Go relay":        {0x1f, 0x77, 0xb4, 0xff},
}

var (
	black = color.RGBA{0x20, 0x20, 0x20, 0xff}
	grey  = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	face  = basicfont.Face7x13
)

// writeChart draws the panels stacked vertically into a PNG at path.
func writeChart(path, title string, panels []panel) error {
	const w, ph, top = 1200, 330, 40
	img := image.NewRGBA(image.Rect(0, 0, w, top+ph*len(panels)))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	text(img, 20, 24, title, black)
	for i, p := range panels {
		drawPanel(img, image.Rect(0, top+i*ph, w, top+(i+1)*ph), p)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func drawPanel(img *image.RGBA, r image.Rectangle, p panel) {
	const left, right, topPad, bottom = 80, 20, 62, 36
	plot := image.Rect(r.Min.X+left, r.Min.Y+topPad, r.Max.X-right, r.Max.Y-bottom)
	text(img, r.Min.X+20, r.Min.Y+16, p.title, black)
	// legend
	x := r.Min.X + 20
	for _, s := range p.series {
		fill(img, image.Rect(x, r.Min.Y+24, x+12, r.Min.Y+36), palette[s])
		text(img, x+16, r.Min.Y+35, s, black)
		x += 16 + 7*len(s) + 18
	}
	top := 0.0
	for _, g := range p.values {
		for _, v := range g {
			if !math.IsNaN(v) && v > top {
				top = v
			}
		}
	}
	if top <= 0 {
		text(img, plot.Min.X+10, plot.Min.Y+20, "no data", black)
		return
	}
	step := niceStep(top / 5)
	top = math.Ceil(top/step) * step
	y := func(v float64) int { return plot.Max.Y - int(v/top*float64(plot.Dy())) }
	for v := 0.0; v <= top+step/2; v += step {
		yy := y(v)
		fill(img, image.Rect(plot.Min.X, yy, plot.Max.X, yy+1), grey)
		label := trimFloat(v)
		text(img, plot.Min.X-8-7*len(label), yy+4, label, black)
	}
	text(img, r.Min.X+8, plot.Min.Y-10, p.unit, black)
	fill(img, image.Rect(plot.Min.X, plot.Min.Y, plot.Min.X+1, plot.Max.Y), black)
	fill(img, image.Rect(plot.Min.X, plot.Max.Y, plot.Max.X, plot.Max.Y+1), black)
	if len(p.groups) == 0 {
		return
	}
	gw := plot.Dx() / len(p.groups)
	bw := max(2, (gw-16)/max(1, len(p.series)))
	for gi, g := range p.groups {
		gx := plot.Min.X + gi*gw + 8
		for si, s := range p.series {
			v := p.values[gi][si]
			if math.IsNaN(v) || v <= 0 {
				continue
			}
			fill(img, image.Rect(gx+si*bw, y(v), gx+(si+1)*bw-2, plot.Max.Y), palette[s])
		}
		lx := plot.Min.X + gi*gw + gw/2 - 7*len(g)/2
		text(img, lx, plot.Max.Y+18, g, black)
	}
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

func trimFloat(v float64) string {
	switch {
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case v*10 == math.Trunc(v*10):
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, &image.Uniform{C: c}, image.Point{}, draw.Src)
}

func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: &image.Uniform{C: c}, Face: face, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

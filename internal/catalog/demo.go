package catalog

import (
	"context"
	"fmt"
	"strings"

	"mercato/internal/money"
)

// demoCategory is a node of the demo tree: "Parent/Child".
var demoCategories = []string{
	"Clothing 服装", "Clothing 服装/Shirts 衬衫", "Clothing 服装/Shoes 鞋",
	"Home & Kitchen 家居厨房", "Home & Kitchen 家居厨房/Cookware 炊具", "Home & Kitchen 家居厨房/Tea 茶",
	"Electronics 电子产品", "Electronics 电子产品/Phones 手机", "Electronics 电子产品/Audio 音频",
	"Books 图书",
}

type demoProduct struct {
	sku, title, zh, desc, category string
	price                          int64 // EUR cents, the first variant
	attr                           string
	values                         []string
}

var demoProducts = []demoProduct{
	{"SHIRT-LINEN", "Linen shirt", "亚麻衬衫", "Breathable washed linen, relaxed fit.", "Clothing 服装/Shirts 衬衫", 4900, "size", []string{"S", "M", "L", "XL"}},
	{"SHIRT-OXFORD", "Oxford shirt", "牛津纺衬衫", "A button-down classic in heavy cotton.", "Clothing 服装/Shirts 衬衫", 5900, "size", []string{"S", "M", "L"}},
	{"SHIRT-SILK", "Silk blouse", "真丝衬衫", "Mulberry silk from Hangzhou.", "Clothing 服装/Shirts 衬衫", 12900, "colour", []string{"ivory", "black"}},
	{"TEE-BASIC", "Organic cotton T-shirt", "有机棉T恤", "Soft, heavy jersey that keeps its shape.", "Clothing 服装/Shirts 衬衫", 1900, "size", []string{"S", "M", "L", "XL"}},
	{"SHOE-RUN", "Trail running shoes", "越野跑鞋", "Grippy soles and a cushioned ride.", "Clothing 服装/Shoes 鞋", 11900, "size", []string{"40", "41", "42", "43", "44"}},
	{"SHOE-CLOTH", "Cloth shoes", "老北京布鞋", "Hand-stitched cotton soles, made in Beijing.", "Clothing 服装/Shoes 鞋", 3500, "size", []string{"38", "40", "42"}},
	{"SHOE-BOOT", "Leather boots", "皮靴", "Goodyear-welted, resoleable.", "Clothing 服装/Shoes 鞋", 21900, "size", []string{"41", "42", "43"}},
	{"WOK-IRON", "Carbon steel wok", "铁锅", "Hand-hammered, 36 cm, for gas and induction.", "Home & Kitchen 家居厨房/Cookware 炊具", 5900, "diameter", []string{"32 cm", "36 cm"}},
	{"PAN-CAST", "Cast iron skillet", "铸铁煎锅", "Pre-seasoned, oven safe.", "Home & Kitchen 家居厨房/Cookware 炊具", 3900, "diameter", []string{"20 cm", "26 cm"}},
	{"STEAMER-BAMBOO", "Bamboo steamer", "竹蒸笼", "Two tiers and a lid, for dumplings and buns.", "Home & Kitchen 家居厨房/Cookware 炊具", 2400, "diameter", []string{"25 cm"}},
	{"KNIFE-CLEAVER", "Chinese cleaver", "菜刀", "A full-height blade for slicing and chopping.", "Home & Kitchen 家居厨房/Cookware 炊具", 4500, "steel", []string{"carbon", "stainless"}},
	{"TEA-LONGJING", "Longjing green tea", "西湖龙井", "Spring harvest from West Lake, pan-fired.", "Home & Kitchen 家居厨房/Tea 茶", 2800, "weight", []string{"50 g", "100 g"}},
	{"TEA-PUER", "Aged pu-erh cake", "普洱茶饼", "A 357 g cake, aged ten years.", "Home & Kitchen 家居厨房/Tea 茶", 6800, "vintage", []string{"2014", "2016"}},
	{"TEA-OOLONG", "Tieguanyin oolong", "铁观音", "Floral, lightly roasted.", "Home & Kitchen 家居厨房/Tea 茶", 2200, "weight", []string{"50 g", "100 g"}},
	{"TEA-SET", "Gaiwan tea set", "盖碗茶具", "A porcelain gaiwan, pitcher and six cups.", "Home & Kitchen 家居厨房/Tea 茶", 4200, "glaze", []string{"celadon", "white"}},
	{"PHONE-X", "Smartphone X", "智能手机 X", "6.1-inch OLED, all-day battery.", "Electronics 电子产品/Phones 手机", 69900, "storage", []string{"128 GB", "256 GB"}},
	{"PHONE-LITE", "Smartphone Lite", "智能手机 轻享版", "The essentials at a friendly price.", "Electronics 电子产品/Phones 手机", 29900, "colour", []string{"blue", "black"}},
	{"PHONE-CASE", "Phone case", "手机壳", "Recycled plastic, raised edges.", "Electronics 电子产品/Phones 手机", 1900, "colour", []string{"clear", "black", "green"}},
	{"CHARGER-65", "65 W USB-C charger", "65瓦 USB-C 充电器", "Charges a laptop and a phone at once.", "Electronics 电子产品/Phones 手机", 3900, "plug", []string{"EU", "UK", "CN"}},
	{"HEADPHONES-NC", "Noise-cancelling headphones", "降噪耳机", "Thirty hours of quiet.", "Electronics 电子产品/Audio 音频", 24900, "colour", []string{"black", "silver"}},
	{"EARBUDS", "Wireless earbuds", "无线耳机", "Pocketable, with a charging case.", "Electronics 电子产品/Audio 音频", 9900, "colour", []string{"white", "black"}},
	{"SPEAKER-BT", "Bluetooth speaker", "蓝牙音箱", "Waterproof and loud enough for a picnic.", "Electronics 电子产品/Audio 音频", 5900, "colour", []string{"red", "grey"}},
	{"BOOK-THREEBODY", "The Three-Body Problem", "三体", "Liu Cixin's first-contact classic.", "Books 图书", 1400, "format", []string{"paperback", "hardcover"}},
	{"BOOK-REDCHAMBER", "Dream of the Red Chamber", "红楼梦", "Cao Xueqin's novel, complete in four volumes.", "Books 图书", 4500, "language", []string{"English", "中文"}},
	{"BOOK-COOK", "Every Grain of Rice", "一粥一饭", "Simple Chinese home cooking.", "Books 图书", 2900, "format", []string{"hardcover"}},
}

// SeedDemo creates a demo catalogue — a category tree and tens of active
// products with variants, English and Chinese titles and media — through
// the catalog's use cases. It is idempotent: what exists (a category of
// the same name under the same parent, a product whose first SKU is
// taken) is left as it is. It returns the number of products created.
func (s *Service) SeedDemo(ctx context.Context) (int, error) {
	t, err := loadTree(ctx, s.db.Reader())
	if err != nil {
		return 0, err
	}
	ids := map[string]string{} // path → id
	for _, path := range demoCategories {
		parent, name := "", path
		if i := strings.LastIndex(path, "/"); i >= 0 {
			parent, name = path[:i], path[i+1:]
		}
		for id, c := range t.byID {
			if c.Name == name && (parent == "" && c.ParentID == nil || c.ParentID != nil && *c.ParentID == ids[parent]) {
				ids[path] = id
			}
		}
		if ids[path] != "" {
			continue
		}
		in := CategoryInput{Name: name}
		if parent != "" {
			p := ids[parent]
			in.ParentID = &p
		}
		c, err := s.CreateCategory(ctx, in)
		if err != nil {
			return 0, fmt.Errorf("demo category %s: %w", path, err)
		}
		ids[path] = c.ID
	}
	created := 0
	for _, d := range demoProducts {
		first := d.sku + "-" + skuPart(d.values[0])
		have, err := s.Variants(ctx, DefaultChannel, []string{first})
		if err != nil {
			return created, err
		}
		if len(have) > 0 {
			continue
		}
		in := ProductInput{Title: d.title + " " + d.zh, Description: d.desc + "\n\n" + d.zh + "。", Status: StatusActive,
			CategoryIDs: []string{ids[d.category]},
			Media: []Media{{URL: "https://images.example.com/demo/" + strings.ToLower(d.sku) + "-1.jpg", Alt: d.title},
				{URL: "https://images.example.com/demo/" + strings.ToLower(d.sku) + "-2.jpg", Alt: d.zh}}}
		for i, v := range d.values {
			price := money.MustNew(d.price+int64(i)*500, "EUR")
			in.Variants = append(in.Variants, VariantInput{SKU: d.sku + "-" + skuPart(v), Title: v, Price: price,
				WeightGrams: 200 + int64(i)*50, Attributes: map[string]string{d.attr: v}})
		}
		if _, err := s.CreateProduct(ctx, in); err != nil {
			return created, fmt.Errorf("demo product %s: %w", d.sku, err)
		}
		created++
	}
	return created, nil
}

// skuPart makes a variant value fit a SKU ("128 GB" → "128GB", "中文" → "V2").
func skuPart(v string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(v) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return fmt.Sprintf("U%X", []byte(v)[:2])
	}
	return b.String()
}

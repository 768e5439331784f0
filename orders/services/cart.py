"""The cart: add, change and remove lines, empty it. A cart reserves nothing; each change checks
the product is for sale and could be checked out right now (`order_place` reserves)."""

from __future__ import annotations

from django.db import transaction

from accounts.models import User
from common.exceptions import ErrorItem
from inventory.exceptions import InsufficientStock, Shortage
from inventory.models import Product
from inventory.selectors import product_get_for_sale

from ..exceptions import ProductUnavailable
from ..models import Cart, CartItem


def _cart_lock(*, user: User) -> Cart:
    """The user's cart, created on first use, locked: a user's cart changes one at a time."""
    cart, _ = Cart.objects.get_or_create(user=user)
    return Cart.objects.select_for_update().get(pk=cart.pk)


def _for_sale(*, product_id: int) -> Product:
    try:
        return product_get_for_sale(product_id=product_id)
    except Product.DoesNotExist:
        raise ProductUnavailable(
            items=[ErrorItem(f"Product {product_id} is not for sale.", attr="product")]
        ) from None


def _check_available(*, product: Product, quantity: int) -> None:
    """A cart reserves nothing; this refuses lines that could not be checked out right now."""
    available = product.stock.available
    if quantity > available:
        raise InsufficientStock(
            shortages=[
                Shortage(
                    product_id=product.pk,
                    sku=product.sku,
                    requested=quantity,
                    available=available,
                )
            ]
        )


@transaction.atomic
def cart_item_add(*, user: User, product_id: int, quantity: int) -> CartItem:
    """Put `quantity` of a product in the cart; the same product again adds to its line."""
    product = _for_sale(product_id=product_id)
    cart = _cart_lock(user=user)
    item = CartItem.objects.filter(cart=cart, product=product).first()
    new_quantity = quantity + (item.quantity if item else 0)
    _check_available(product=product, quantity=new_quantity)
    if item is None:
        item = CartItem.objects.create(cart=cart, product=product, quantity=new_quantity)
    else:
        item.quantity = new_quantity
        item.save(update_fields=["quantity", "updated_at"])
    item.product = product
    return item


@transaction.atomic
def cart_item_update(*, user: User, item_id: int, quantity: int) -> CartItem:
    """Set a line's quantity. Another user's line raises `CartItem.DoesNotExist` (→ 404)."""
    cart = _cart_lock(user=user)
    item = CartItem.objects.get(pk=item_id, cart=cart)
    product = _for_sale(product_id=item.product_id)
    _check_available(product=product, quantity=quantity)
    item.quantity = quantity
    item.save(update_fields=["quantity", "updated_at"])
    item.product = product
    return item


@transaction.atomic
def cart_item_remove(*, user: User, item_id: int) -> None:
    cart = _cart_lock(user=user)
    deleted, _ = CartItem.objects.filter(pk=item_id, cart=cart).delete()
    if not deleted:
        raise CartItem.DoesNotExist


@transaction.atomic
def cart_clear(*, user: User) -> None:
    CartItem.objects.filter(cart__user=user).delete()

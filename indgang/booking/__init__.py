"""Booking a conversation with a tovholder: the directory of tovholdere, their calendars,
atomic bookings in Redis, SMS notifications and the .ics file.

The gateway, the actions and the staff console use only the names exported here.
"""

from indgang.booking.bookings import (
    Booking,
    BookingLimitReached,
    BookingRequest,
    BookingState,
    SlotUnavailable,
    book,
    cancel_booking,
    citizen_record,
    conversation_booking,
    current_booking,
    erase_conversation_bookings,
    find_active_booking,
    get_booking,
    in_booking_form,
    list_bookings,
    move_booking,
    start_collecting,
    stop_collecting,
    tovholdere_for,
)
from indgang.booking.calendar import Calendar, Slot, TimeWish
from indgang.booking.tovholdere import Directory, MeetingKind, Tovholder, load_directory

__all__ = [
    "Booking",
    "BookingLimitReached",
    "BookingRequest",
    "BookingState",
    "Calendar",
    "Directory",
    "MeetingKind",
    "Slot",
    "SlotUnavailable",
    "TimeWish",
    "Tovholder",
    "book",
    "cancel_booking",
    "citizen_record",
    "conversation_booking",
    "current_booking",
    "erase_conversation_bookings",
    "find_active_booking",
    "get_booking",
    "in_booking_form",
    "list_bookings",
    "load_directory",
    "move_booking",
    "start_collecting",
    "stop_collecting",
    "tovholdere_for",
]
